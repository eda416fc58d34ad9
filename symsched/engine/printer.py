"""Print a kernel's data (a JSON expression table, optionally with in-place instructions) as NumPy code.

This module imports neither SymPy nor anything it did not write: a kernel entry is *data* — a table
of nodes (symbols, exact numbers, and a whitelist of operations) plus, for in-place kernels, a list
of NumPy ufunc calls into a workspace — and the Python source is printed here, one operation per
line (three-address code, so precedence cannot go wrong), then compiled in this process. Every
node type, name and reference is checked; anything else raises :class:`BadEntry`. The same printer
serves freshly built kernels and kernels read from the disk cache, so both run identical code, and a
process with a warm cache never imports SymPy.

Table format (made by :func:`symsched.engine.codegen.encode`): ``nodes`` is a list whose entries
refer to earlier entries by index: ``["S", name, assumptions]`` a symbol, ``["I", "123"]`` an integer,
``["Q", "p", "q"]`` a rational, ``["F", sign, "mantissa", exp, bc, prec]`` a binary float,
``["C", name]`` a constant, ``[op, i, j, ...]`` an operation of :data:`OPS`. ``args`` lists the
argument symbols, ``cse`` the assignments ``[symbol, value]`` in order, ``exprs`` the outputs.
In-place kernels add ``ops``: ``[func, [operand, ...], out]`` with operands ``["a", i]`` (argument),
``["w", j]`` (workspace buffer), ``["s", k]`` (the table's output k, a scalar), ``["n", "repr"]``
(a float literal), and ``outs``: the operands returned.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any, Callable

import numpy as np

__all__ = ["BadEntry", "print_table", "print_inplace", "compile_source", "OPS", "INPLACE_FUNCS"]


class BadEntry(Exception):
    """Kernel data that is not well formed (never printed, never run)."""


_INT = re.compile(r"-?[0-9]{1,400}\Z")
#: largest |exponent| of an exact power in an entry (the derivations use at most 6)
MAX_EXPONENT = 64

#: operation node -> (minimum, maximum number of children, printer of the child names)
OPS: dict[str, tuple[int, int, Callable[[list[str]], str]]] = {
    "Add": (2, 10_000, lambda a: " + ".join(a)),
    "Mul": (2, 10_000, lambda a: " * ".join(a)),
    "exp": (1, 1, lambda a: f"np.exp({a[0]})"),
    "log": (1, 1, lambda a: f"np.log({a[0]})"),
    "sin": (1, 1, lambda a: f"np.sin({a[0]})"),
    "cos": (1, 1, lambda a: f"np.cos({a[0]})"),
    "tan": (1, 1, lambda a: f"np.tan({a[0]})"),
    "cot": (1, 1, lambda a: f"1.0/np.tan({a[0]})"),
    "asin": (1, 1, lambda a: f"np.arcsin({a[0]})"),
    "acos": (1, 1, lambda a: f"np.arccos({a[0]})"),
    "atan": (1, 1, lambda a: f"np.arctan({a[0]})"),
    "acot": (1, 1, lambda a: f"np.arctan(1.0/{a[0]})"),
    "atan2": (2, 2, lambda a: f"np.arctan2({a[0]}, {a[1]})"),
    "sinh": (1, 1, lambda a: f"np.sinh({a[0]})"),
    "cosh": (1, 1, lambda a: f"np.cosh({a[0]})"),
    "tanh": (1, 1, lambda a: f"np.tanh({a[0]})"),
    "asinh": (1, 1, lambda a: f"np.arcsinh({a[0]})"),
    "acosh": (1, 1, lambda a: f"np.arccosh({a[0]})"),
    "atanh": (1, 1, lambda a: f"np.arctanh({a[0]})"),
    "Abs": (1, 1, lambda a: f"np.abs({a[0]})"),
    "sign": (1, 1, lambda a: f"np.sign({a[0]})"),
    "Min": (2, 10_000, lambda a: _fold("np.minimum", a)),
    "Max": (2, 10_000, lambda a: _fold("np.maximum", a)),
    "floor": (1, 1, lambda a: f"np.floor({a[0]})"),
    "ceiling": (1, 1, lambda a: f"np.ceil({a[0]})"),
    "Heaviside": (1, 2, lambda a: f"np.heaviside({a[0]}, {a[1] if len(a) > 1 else '0.5'})"),
    "erf": (1, 1, lambda a: f"_special.erf({a[0]})"),
    "erfc": (1, 1, lambda a: f"_special.erfc({a[0]})"),
    "expm1": (1, 1, lambda a: f"np.expm1({a[0]})"),
    "log1p": (1, 1, lambda a: f"np.log1p({a[0]})"),
    "exp2": (1, 1, lambda a: f"np.exp2({a[0]})"),
    "log2": (1, 1, lambda a: f"np.log2({a[0]})"),
    "log10": (1, 1, lambda a: f"np.log10({a[0]})"),
    "hypot": (2, 2, lambda a: f"np.hypot({a[0]}, {a[1]})"),
    "Sqrt": (1, 1, lambda a: f"np.sqrt({a[0]})"),
    "Cbrt": (1, 1, lambda a: f"np.cbrt({a[0]})"),
    "And": (2, 10_000, lambda a: _fold("np.logical_and", a)),
    "Or": (2, 10_000, lambda a: _fold("np.logical_or", a)),
    "Not": (1, 1, lambda a: f"np.logical_not({a[0]})"),
    "StrictLessThan": (2, 2, lambda a: f"np.less({a[0]}, {a[1]})"),
    "LessThan": (2, 2, lambda a: f"np.less_equal({a[0]}, {a[1]})"),
    "StrictGreaterThan": (2, 2, lambda a: f"np.greater({a[0]}, {a[1]})"),
    "GreaterThan": (2, 2, lambda a: f"np.greater_equal({a[0]}, {a[1]})"),
    "Equality": (2, 2, lambda a: f"np.equal({a[0]}, {a[1]})"),
    "Unequality": (2, 2, lambda a: f"np.not_equal({a[0]}, {a[1]})"),
}
_SPECIAL = ("Pow", "Piecewise", "ExprCondPair")  # printed with their own rules below

#: NumPy functions an in-place instruction may call (all write into ``out=``).
INPLACE_FUNCS = ("add", "subtract", "multiply", "divide", "power", "copyto", "negative", "reciprocal",
                 "sqrt", "exp", "log", "expm1", "log1p", "abs", "minimum", "maximum", "square", "hypot")

_CONSTANTS = {"pi": repr(math.pi), "E": repr(math.e), "oo": "np.inf", "-oo": "(-np.inf)", "nan": "np.nan",
              "zoo": "np.nan", "true": "True", "false": "False"}


def _fold(fn: str, a: list[str]) -> str:
    out = a[0]
    for x in a[1:]:
        out = f"{fn}({out}, {x})"
    return out


def _finite(v: Any) -> str:
    """repr of the float nearest an exact number, BadEntry beyond the float64 range (a kernel for eta = 1e-180
    holds integers of 400 digits: they would raise OverflowError when the kernel is printed)."""
    try:
        return repr(float(v))
    except OverflowError:
        raise BadEntry("a number beyond the float64 range") from None


def _float_literal(sign: Any, man: Any, exp: Any) -> str:
    if sign not in (0, 1) or not isinstance(man, str) or not _INT.match(man) or man.startswith("-") \
            or type(exp) is not int or abs(exp) > 1 << 20:
        raise BadEntry("bad float")
    m = int(man)
    magnitude = m.bit_length() + exp  # 2 ** (magnitude - 1) <= m * 2 ** exp < 2 ** magnitude
    if m and magnitude > 1025:  # beyond the float64 range (without building a 2 ** (1 << 20) Fraction first)
        f = math.inf
    elif not m or magnitude < -1075:  # below half the smallest subnormal: rounds to zero
        f = 0.0
    else:
        try:
            f = float(Fraction(m) * Fraction(2) ** exp)  # exact, then rounded once
        except OverflowError:
            f = math.inf
    f = -f if sign else f
    return repr(f) if math.isfinite(f) else ("(-np.inf)" if f < 0 else "np.inf")


class _Table:
    """Validated node table, printed on demand as three-address code."""

    def __init__(self, nodes: Any, args: Any, cse: Any, exact_rationals: bool = False) -> None:
        self.exact_rationals = exact_rationals
        if not isinstance(nodes, list) or not isinstance(args, list) or not isinstance(cse, list):
            raise BadEntry("malformed table")
        self.nodes = nodes
        self.lines: list[str] = []
        self.names: dict[int, str] = {}
        self.symbols: dict[int, str] = {}
        for pos, i in enumerate(args):
            self._symbol(i, f"a{pos}")
        for j, pair in enumerate(cse):
            if not isinstance(pair, list) or len(pair) != 2:
                raise BadEntry("malformed assignment")
            target, value = pair
            self._check_index(target)
            if self.nodes[target][0] != "S" or target in self.symbols:
                raise BadEntry("bad assignment target")
            name = f"c{j}"
            self.lines.append(f"    {name} = {self.ref(value)}")
            self.symbols[target] = name

    def _check_index(self, i: Any) -> None:
        if type(i) is not int or not 0 <= i < len(self.nodes):
            raise BadEntry("bad index")

    def _symbol(self, i: Any, name: str) -> None:
        self._check_index(i)
        node = self.nodes[i]
        if not isinstance(node, list) or not node or node[0] != "S" or i in self.symbols:
            raise BadEntry("arguments must be distinct symbols")
        self.symbols[i] = name

    def ref(self, i: Any) -> str:
        """The Python expression (a name or a literal) holding node ``i``, printing it first if needed."""
        self._check_index(i)
        if i in self.symbols:
            return self.symbols[i]
        if i in self.names:
            return self.names[i]
        node = self.nodes[i]
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise BadEntry("malformed node")
        tag, rest = node[0], node[1:]
        if tag == "S":
            raise BadEntry("a symbol that is neither an argument nor assigned before use")
        if tag == "I":
            if len(rest) != 1 or not isinstance(rest[0], str) or not _INT.match(rest[0]):
                raise BadEntry("bad integer")
            v = int(rest[0])  # as a float: a chain of integer nodes can then only overflow to inf (or raise), where
            return _finite(v)  # Python integers ran for ever (t * t forty times from 3: 3 ** 2 ** 40); exact below 2^53
        if tag == "Q":
            if len(rest) != 2 or not all(isinstance(x, str) and _INT.match(x) for x in rest) or int(rest[1]) <= 0:
                raise BadEntry("bad rational")
            p, q = int(rest[0]), int(rest[1])
            if self.exact_rationals and max(abs(p), q) < 2**53 and q > 1:  # p/q to the precision of the arguments
                return f"(np.longdouble({p}) / {q})"
            return f"({_finite(Fraction(p, q))})"
        if tag == "F":
            if len(rest) != 5:
                raise BadEntry("bad float")
            return _float_literal(rest[0], rest[1], rest[2])
        if tag == "C":
            if len(rest) != 1 or rest[0] not in _CONSTANTS:
                raise BadEntry("bad constant")
            return _CONSTANTS[rest[0]]
        if tag == "Mul" and any(self._reciprocal(c) is not None for c in rest):
            text = self._quotient(rest)
        elif tag == "Pow":
            text = self._pow(rest)
        elif tag == "Piecewise":
            text = self._piecewise(rest)
        elif tag in OPS:
            lo, hi, fmt = OPS[tag]
            if not lo <= len(rest) <= hi:
                raise BadEntry(f"{tag} with {len(rest)} arguments")
            text = fmt([self.ref(c) for c in rest])
        else:
            raise BadEntry(f"node type {tag!r} is not allowed")
        name = f"t{i}"
        self.lines.append(f"    {name} = {text}")
        self.names[i] = name
        return name

    def _reciprocal(self, i: Any) -> Any:
        """For Pow(b, -k) with a positive integer k: (b, k); else None."""
        self._check_index(i)
        node = self.nodes[i]
        if isinstance(node, list) and len(node) == 3 and node[0] == "Pow":
            self._check_index(node[2])
            e = self.nodes[node[2]]
            if isinstance(e, list) and len(e) == 2 and e[0] == "I" and isinstance(e[1], str) and _INT.match(e[1]) \
                    and -MAX_EXPONENT <= int(e[1]) < 0:  # (beyond: refused by _pow)
                return node[1], -int(e[1])
        return None

    def _quotient(self, rest: list[Any]) -> str:
        """A product with reciprocal factors as one division, like lambdify's ``a*b/(c*d)``: 1/q is never
        formed on its own (it would overflow where p/q does not)."""
        num, den = [], []
        for c in rest:
            r = self._reciprocal(c)
            if r is None:
                num.append(self.ref(c))
            else:
                base, k = r
                b = self.ref(base)
                den += [b] * k if k <= 3 else [f"({b}) ** {k}"]
        return f"({' * '.join(num) or '1.0'}) / ({' * '.join(den)})"

    def _pow(self, rest: list[Any]) -> str:
        if len(rest) != 2:
            raise BadEntry("Pow needs two arguments")
        base = self.ref(rest[0])
        self._check_index(rest[1])
        e = self.nodes[rest[1]]
        exact = None
        if isinstance(e, list) and e and e[0] == "I" and len(e) == 2 and isinstance(e[1], str) and _INT.match(e[1]):
            exact = Fraction(int(e[1]))
        elif isinstance(e, list) and e and e[0] == "Q" and len(e) == 3:
            self.ref(rest[1])  # validates the rational
            exact = Fraction(int(e[1]), int(e[2]))
        if exact is not None and abs(exact) > MAX_EXPONENT:  # 3 ** 9007199254740991 would run for ever
            raise BadEntry(f"an exponent beyond +-{MAX_EXPONENT}")
        if exact == 2:
            return f"{base} * {base}"
        if exact == -1:
            return f"1.0/{base}"
        if exact == Fraction(1, 2):
            return f"np.sqrt({base})"
        if exact == Fraction(-1, 2):
            return f"1.0/np.sqrt({base})"
        if exact is None:  # a computed exponent: numpy's power (inf on overflow, where Python's float ** raises);
            return f"({base}) ** np.multiply(1.0, {self.ref(rest[1])})"  # (keeps a longdouble exponent longdouble)
        power = str(exact.numerator) if exact.denominator == 1 else self.ref(rest[1])  # (as written before)
        return f"({base}) ** {power}"  # (a literal base may be negative: -2.0 ** 4 would read -(2.0 ** 4))

    def _piecewise(self, rest: list[Any]) -> str:
        conds, vals = [], []
        for i in rest:
            self._check_index(i)
            pair = self.nodes[i]
            if not isinstance(pair, list) or len(pair) != 3 or pair[0] != "ExprCondPair":
                raise BadEntry("Piecewise needs expression-condition pairs")
            vals.append(self.ref(pair[1]))
            conds.append(self.ref(pair[2]))
        return f"np.select([{', '.join(conds)}], [{', '.join(vals)}], default=np.nan)"


def print_table(nodes: Any, args: Any, cse: Any, exprs: Any, name: str = "kernel", exact_rationals: bool = False) -> str:
    """Source of ``def name(a0, a1, ...): ... return [outputs]`` for a node table.

    ``exact_rationals``: rational constants p/q are computed in ``numpy.longdouble`` (the level functions: a
    float64 literal 1/3 would cost a formula that cancels its digits in the longdouble coefficients too, where
    nothing else does; their float64 evaluation then runs in longdouble from float64 arguments, one row per step)."""
    tab = _Table(nodes, args, cse, exact_rationals)
    if not isinstance(exprs, list):
        raise BadEntry("malformed outputs")
    outs = [tab.ref(i) for i in exprs]
    body = "\n".join(tab.lines) if tab.lines else "    pass"
    params = ", ".join(f"a{i}" for i in range(len(args)))
    return f"def {name}({params}):\n{body}\n    return [{', '.join(outs)}]\n"


def print_inplace(nodes: Any, args: Any, cse: Any, exprs: Any, ops: Any, outs: Any, n_workspace: Any,
                  name: str = "kernel") -> str:
    """Source of ``def name(a0, ..., ws)``: the scalar table first, then one NumPy call per instruction."""
    tab = _Table(nodes, args, cse)
    if not isinstance(exprs, list) or not isinstance(ops, list) or not isinstance(outs, list) \
            or type(n_workspace) is not int or not 0 <= n_workspace <= 10_000:
        raise BadEntry("malformed in-place kernel")
    scalars = [tab.ref(i) for i in exprs]

    def operand(x: Any) -> str:
        if not isinstance(x, list) or len(x) != 2 or not isinstance(x[0], str):
            raise BadEntry("bad operand")
        kind, v = x
        if kind == "a" and type(v) is int and 0 <= v < len(args):
            return f"a{v}"
        if kind == "w" and type(v) is int and 0 <= v < n_workspace:
            return f"ws[{v}]"
        if kind == "s" and type(v) is int and 0 <= v < len(scalars):
            return scalars[v]
        if kind == "n" and isinstance(v, str):
            try:
                f = float(v)
            except ValueError:
                raise BadEntry("bad literal") from None
            return repr(f) if math.isfinite(f) else ("np.inf" if f > 0 else "(-np.inf)" if f < 0 else "np.nan")
        raise BadEntry("bad operand")

    lines = list(tab.lines)
    for op in ops:
        if not isinstance(op, list) or len(op) != 3 or op[0] not in INPLACE_FUNCS or not isinstance(op[1], list):
            raise BadEntry("bad instruction")
        fn, inputs, out = op
        dest = operand(out)
        if not dest.startswith("ws["):
            raise BadEntry("instructions write into the workspace only")
        ins = [operand(x) for x in inputs]
        if fn == "copyto":
            if len(ins) != 1:
                raise BadEntry("copyto takes one input")
            lines.append(f"    np.copyto({dest}, {ins[0]})")
        else:
            lines.append(f"    np.{fn}({', '.join(ins)}, out={dest})")
    # a scalar entry keeps its type: a Python float in the float64 sweeps, numpy.longdouble in the extended ones
    # (a float() here once rounded the longdouble sweeps' S-free entries to float64)
    results = [operand(x) for x in outs]
    params = ", ".join([f"a{i}" for i in range(len(args))] + ["ws"])
    body = "\n".join(lines) if lines else "    pass"
    return f"def {name}({params}):\n{body}\n    return [{', '.join(results)}]\n"


def compile_source(source: str, name: str, filename: str) -> Callable[..., Any]:
    """Compile printed source (in a namespace holding only NumPy and scipy.special) and return ``name``."""
    import linecache

    from scipy import special

    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for inspect.getsource
    ns: dict[str, Any] = {"np": np, "_special": special, "__builtins__": {"float": float}}
    exec(compile(source, filename, "exec"), ns)  # source printed just now by this module from checked data
    fn = ns[name]
    return fn
