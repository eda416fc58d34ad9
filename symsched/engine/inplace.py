"""Generate NumPy source that evaluates expressions with in-place operations into a workspace.

The per-mode kernels run once per step over arrays of up to ~10^5 modes; ``lambdify``'s code
allocates a fresh array for every operation, and with the default allocator each large temporary
costs page faults. The code generated here instead writes every array operation into buffers of a
workspace the caller allocates once per sweep (``ws``, a list of arrays shaped like the array
arguments), and folds scalar work into the few scalar arguments. It handles the expression shapes
of the mode kernels: sums, products, integer powers (reciprocals become one division), symbols and
numbers; anything else falls back to the NumPy function of the same name.

The source is produced here, in this process, from SymPy expressions; nothing else is executed.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["emit"]


def emit(name: str, args: Sequence[Any], exprs: Sequence[Any], n_array: int) -> tuple[str, int]:
    """(source of ``def name(*args, ws)``, number of workspace buffers) computing ``exprs``.

    The first ``n_array`` arguments are arrays (same shape); the others scalars. Outputs that are
    arrays are workspace buffers (valid until the next call); scalar outputs come back as floats.
    """
    import sympy as sp

    array_syms = set(args[:n_array])
    names = {a: f"a{i}" for i, a in enumerate(args)}
    replacements, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols("_c"), order="none")
    lines: list[str] = []
    n_buf = [0]
    is_array: dict[Any, bool] = {}

    def new_buf() -> str:
        n_buf[0] += 1
        return f"ws[{n_buf[0] - 1}]"

    def scalar_code(e: Any) -> str:
        return sp.pycode(e.xreplace({s: sp.Symbol(n) for s, n in names.items()}), fully_qualified_modules=False)

    def has_array(e: Any) -> bool:
        return any(s in array_syms or is_array.get(s, False) for s in e.free_symbols)

    def ref(e: Any) -> str:
        return names[e] if e in names else scalar_code(e)

    def emit_array(e: Any, dest: str | None = None) -> str:
        """Code computing array-valued ``e``; returns the buffer (or argument) holding it."""
        if e.is_Symbol:
            if dest is None:
                return names[e]
            lines.append(f"    np.copyto({dest}, {names[e]})")
            return dest
        if e.is_Add:
            arr = [t for t in e.args if has_array(t)]
            sca = [t for t in e.args if not has_array(t)]
            out = dest or new_buf()
            first = emit_array(arr[0], out if _fresh(arr[0]) else None)
            if first != out:
                second = emit_operand(arr[1]) if len(arr) > 1 else None
                if second is not None:
                    lines.append(f"    np.add({first}, {second}, out={out})")
                    rest = arr[2:]
                else:
                    lines.append(f"    np.copyto({out}, {first})")
                    rest = arr[1:]
            else:
                rest = arr[1:]
            for t in rest:
                lines.append(f"    np.add({out}, {emit_operand(t)}, out={out})")
            if sca:
                lines.append(f"    np.add({out}, {scalar_code(sp.Add(*sca))}, out={out})")
            return out
        if e.is_Mul:
            num_a, den_a, sca = [], [], []
            for f in e.args:
                if not has_array(f):
                    sca.append(f)
                elif f.is_Pow and f.exp.is_Integer and f.exp < 0:
                    den_a.append(f.base ** (-f.exp))
                else:
                    num_a.append(f)
            out = dest or new_buf()
            scal = scalar_code(sp.Mul(*sca)) if sca else None
            if num_a:
                first = emit_array(num_a[0], out if _fresh(num_a[0]) else None)
                rest = num_a[1:]
                if first != out:
                    if rest:
                        lines.append(f"    np.multiply({first}, {emit_operand(rest[0])}, out={out})")
                        rest = rest[1:]
                    elif scal is not None:
                        lines.append(f"    np.multiply({first}, {scal}, out={out})")
                        scal = None
                    else:
                        lines.append(f"    np.copyto({out}, {first})")
                for f in rest:
                    lines.append(f"    np.multiply({out}, {emit_operand(f)}, out={out})")
                if scal is not None:
                    lines.append(f"    np.multiply({out}, {scal}, out={out})")
                for d in den_a:
                    lines.append(f"    np.divide({out}, {emit_operand(d)}, out={out})")
            else:
                d0 = emit_operand(den_a[0])
                lines.append(f"    np.divide({scal if scal is not None else '1.0'}, {d0}, out={out})")
                for d in den_a[1:]:
                    lines.append(f"    np.divide({out}, {emit_operand(d)}, out={out})")
            return out
        if e.is_Pow and e.exp.is_Integer:
            k = int(e.exp)
            out = dest or new_buf()
            base = emit_operand(e.base)
            if k == 2:
                lines.append(f"    np.multiply({base}, {base}, out={out})")
            elif k == -1:
                lines.append(f"    np.divide(1.0, {base}, out={out})")
            elif k == 1:
                lines.append(f"    np.copyto({out}, {base})")
            else:
                lines.append(f"    np.power({base}, {float(k)}, out={out})")
            return out
        # any other function of an array: NumPy's function of the same name
        out = dest or new_buf()
        fn = type(e).__name__.lower()
        inner = ", ".join(emit_operand(a) if has_array(a) else scalar_code(a) for a in e.args)
        lines.append(f"    np.copyto({out}, np.{fn}({inner}))")
        return out

    def emit_operand(e: Any) -> str:
        """An array operand (argument, cse variable or freshly computed buffer) or scalar code."""
        if not has_array(e):
            return scalar_code(e)
        if e.is_Symbol:
            return names[e]
        return emit_array(e)

    def _fresh(e: Any) -> bool:
        return not e.is_Symbol

    for sym, val in replacements:
        if has_array(val):
            is_array[sym] = True
            names[sym] = emit_array(val)
        else:
            is_array[sym] = False
            tmp = f"s{len(names)}"
            lines.append(f"    {tmp} = {scalar_code(val)}")
            names[sym] = tmp
    outs = []
    for e in reduced:
        e = sp.sympify(e)
        if has_array(e):
            outs.append(emit_array(e) if not e.is_Symbol else names[e])
        else:
            outs.append(f"float({scalar_code(e)})")
    argnames = ", ".join(f"a{i}" for i in range(len(args)))
    body = "\n".join(lines) if lines else "    pass"
    src = f"def {name}({argnames}, ws):\n{body}\n    return [{', '.join(outs)}]\n"
    return src, n_buf[0]
