"""Text into LaTeX table cells: the one escaping every ``to_latex`` table uses."""

from __future__ import annotations

__all__ = ["tex_text"]

#: LaTeX's special characters in running text and their escapes, applied in this order (a backslash becomes a
#: placeholder first, so no escape added later is escaped again; braces before the escapes that add braces).
_SPECIAL = (("\\", "\0"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"),
            ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}"), ("\0", r"\textbackslash{}"))
#: The symbols symsched's tables print, in LaTeX (longest first: "Δℓ" before "Δ"; "|" before "‖", whose LaTeX holds one).
_SYMBOLS = (("Δℓ", r"$\Delta\ell$"), ("Δμ", r"$\Delta\mu$"), ("Δ", r"$\Delta$"), ("−", "$-$"), ("–", "--"),
            ("₀", "$_0$"), ("†", r"$^\dagger$"), ("‡", r"$^\ddagger$"), ("×", r"$\times$"), ("²", "$^2$"),
            ("|", "$|$"), ("‖", r"$\|$"))


def tex_text(text: str) -> str:
    """``text`` (a label, a number, a header, a user's schedule name) as LaTeX text: its special characters
    ``\\ & % $ # _ { } ~ ^`` escaped, then the table symbols above written in math mode."""
    out = str(text)
    for raw, tex in _SPECIAL + _SYMBOLS:
        out = out.replace(raw, tex)
    return out
