"""Derivations that run the same way every time: SymPy's own random source, seeded for their duration.

SymPy's multivariate factorisation (``factor`` -> ``dmp_zz_wang``, Wang's EEZ algorithm) draws its
evaluation points from ``sympy.core.random.rng``, a module-level generator that any earlier SymPy
call may have advanced. The factors are unique, so results never depend on it, but the time taken
does. Every derivation entry point of symsched (kernel builds, LaTeX rendering, ``stabilize``) runs
inside :func:`seeded_sympy`, which seeds that generator with a fixed value and restores its previous
state afterwards, so a cold derivation costs the same in every process and the user's own SymPy
random stream is left as it was.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

SEED = 20261201
_LOCAL = threading.local()


@contextlib.contextmanager
def seeded_sympy() -> Iterator[None]:
    """Run the body with ``sympy.core.random.rng`` seeded to :data:`SEED`; restore its state on exit.

    Re-entrant: a nested use keeps the outer sequence going (only the outermost level seeds/restores).
    """
    depth = getattr(_LOCAL, "depth", 0)
    if depth:
        _LOCAL.depth = depth + 1
        try:
            yield
        finally:
            _LOCAL.depth = depth
        return
    from sympy.core.random import rng

    state = rng.getstate()
    rng.seed(SEED)
    _LOCAL.depth = 1
    try:
        yield
    finally:
        _LOCAL.depth = 0
        rng.setstate(state)
