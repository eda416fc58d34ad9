"""Lower SymPy expressions to in-place NumPy instructions into a workspace (data, printed by :mod:`.printer`).

The per-mode kernels run once per step over arrays of up to ~10^5 modes; ``lambdify``'s code
allocates a fresh array for every operation, and each large fresh temporary costs page faults. The
instructions made here instead write every array operation into buffers of a workspace the caller
allocates once per sweep (``ws``, arrays shaped like the array arguments), and leave scalar work to
a few scalar expressions. They cover the expression shapes of the mode kernels: sums, products,
integer powers (square-and-multiply; a negative power is one division more), symbols and numbers; any
other function of an array becomes one call of the NumPy function of the same name (from a whitelist).
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["lower"]

_UFUNC = {"exp": "exp", "log": "log", "expm1": "expm1", "log1p": "log1p", "Abs": "abs", "Sqrt": "sqrt"}


def lower(args: Sequence[Any], exprs: Sequence[Any], n_array: int) -> tuple[list[Any], list[Any], list[Any], int]:
    """(scalar expressions, instructions, outputs, workspace size) computing ``exprs``.

    Operands: ``["a", i]`` argument i, ``["w", j]`` workspace buffer j, ``["s", k]`` scalar expression k
    (SymPy, in the arguments), ``["n", repr]`` a float literal. Array outputs are workspace buffers
    (valid until the next call) or arguments; scalar outputs are scalar expressions.
    """
    import sympy as sp

    array_syms = set(args[:n_array])
    argpos = {a: i for i, a in enumerate(args)}
    replacements, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols("_c"), order="none")
    scalars: list[Any] = []
    scalar_index: dict[Any, int] = {}
    ops: list[Any] = []
    n_buf = [0]
    env: dict[Any, Any] = {}  # cse symbol -> operand (array) or expression (scalar)

    def new_buf() -> list[Any]:
        n_buf[0] += 1
        return ["w", n_buf[0] - 1]

    def has_array(e: Any) -> bool:
        return any(s in array_syms or (s in env and env[s][0] != "x") for s in e.free_symbols)

    def scalar(e: Any) -> list[Any]:
        e = sp.sympify(e).xreplace({s: v[1] for s, v in env.items() if v[0] == "x"})
        if e.is_Number:
            return ["n", repr(float(e))]
        key = sp.srepr(e)
        if key not in scalar_index:
            scalar_index[key] = len(scalars)
            scalars.append(e)
        return ["s", scalar_index[key]]

    def operand(e: Any) -> list[Any]:
        if not has_array(e):
            return scalar(e)
        if e in argpos:
            return ["a", argpos[e]]
        if e in env:
            return env[e]
        return emit(e)

    def emit(e: Any, dest: Any = None) -> list[Any]:
        out = dest or new_buf()
        if e.is_Add:
            arr = [t for t in e.args if has_array(t)]
            sca = [t for t in e.args if not has_array(t)]
            fresh = arr[0] not in argpos and arr[0] not in env
            first = emit(arr[0], out) if fresh else operand(arr[0])
            if first == out:
                rest = arr[1:]
            elif len(arr) > 1:
                ops.append(["add", [first, operand(arr[1])], out])
                rest = arr[2:]
            elif sca:  # an input array plus scalars: one pass (S - 1), not a copy and an addition
                ops.append(["add", [first, scalar(sp.Add(*sca))], out])
                return out
            else:
                ops.append(["copyto", [first], out])
                rest = []
            for t in rest:
                ops.append(["add", [out, operand(t)], out])
            if sca:
                ops.append(["add", [out, scalar(sp.Add(*sca))], out])
            return out
        if e.is_Mul:
            num, den, sca = [], [], []
            for f in e.args:
                if not has_array(f):
                    sca.append(f)
                elif f.is_Pow and f.exp.is_Integer and f.exp < 0:
                    den.append(f.base ** (-f.exp))
                else:
                    num.append(f)
            s = scalar(sp.Mul(*sca)) if sca else None
            if num:
                fresh = num[0] not in argpos and num[0] not in env
                first = emit(num[0], out) if fresh else operand(num[0])
                rest: list[Any] = num[1:] + ([None] if s is not None else [])
                den_ops = [operand(d) for d in den]
                if first != out:
                    if rest:
                        f = rest.pop(0)
                        ops.append(["multiply", [first, s if f is None else operand(f)], out])
                    elif den_ops:
                        ops.append(["divide", [first, den_ops.pop(0)], out])
                    else:
                        ops.append(["copyto", [first], out])
                for f in rest:
                    ops.append(["multiply", [out, s if f is None else operand(f)], out])
                for d in den_ops:
                    ops.append(["divide", [out, d], out])
            else:
                ops.append(["divide", [s or ["n", "1.0"], operand(den[0])], out])
                for d in den[1:]:
                    ops.append(["divide", [out, operand(d)], out])
            return out
        if e.is_Pow and e.exp.is_Integer:
            k = int(e.exp)
            base = operand(e.base)
            if k == -1:
                ops.append(["divide", [["n", "1.0"], base], out])
            elif k == 1:
                ops.append(["copyto", [base], out])
            elif k == 0:
                ops.append(["power", [base, ["n", "0.0"]], out])
            else:  # square-and-multiply, then one reciprocal: numpy.power with a float exponent calls
                # libm pow per element, ~20x the cost of a multiplication (x**-2 in every multistep gradient)
                acc = base
                for bit in bin(abs(k))[3:]:
                    ops.append(["multiply", [acc, acc], out])
                    acc = out
                    if bit == "1":
                        ops.append(["multiply", [out, base], out])
                if k < 0:
                    ops.append(["divide", [["n", "1.0"], out], out])
            return out
        if e.is_Pow and e.exp == sp.Rational(1, 2):
            ops.append(["sqrt", [operand(e.base)], out])
            return out
        name = type(e).__name__
        if name in _UFUNC and len(e.args) == 1:
            ops.append([_UFUNC[name], [operand(e.args[0])], out])
            return out
        raise ValueError(f"cannot lower {name} to in-place NumPy instructions")

    for sym, val in replacements:
        if has_array(val):
            env[sym] = operand(val) if val.is_Symbol else emit(val)
        else:
            env[sym] = ("x", val.xreplace({s: v[1] for s, v in env.items() if v[0] == "x"}))
    outs = []
    for e in reduced:
        e = sp.sympify(e)
        outs.append(operand(e) if has_array(e) else scalar(e))
    return scalars, ops, outs, n_buf[0]
