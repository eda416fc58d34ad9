"""Load symsched's numeric engine outside a timed region.

Since ``import symsched`` loads its parts on first use, the first call of ``output_spectrum`` in a fresh process
also imports the engine (the state-space programs, the kernel cache, the code printer, every sampler's update
equations): tens of milliseconds that the benchmarks timing "one call, imports excluded" must not count. The engine
imports no SymPy (kernels come from the cache; only a cold build imports it), which :func:`import_engine` checks.
"""

from __future__ import annotations

import importlib
import sys

#: what a warm first ``output_spectrum`` / ``divergence_and_grad`` call imports (measured with ``sys.modules``)
ENGINE = ("symsched.api", "symsched._datacache", "symsched.engine.codegen", "symsched.engine.divergence",
          "symsched.engine.kernels", "symsched.engine.printer", "symsched.engine.program", "symsched.engine.recursion",
          "symsched.symbolic.plan", "symsched.symbolic.samplers", "symsched.symbolic.seeding")


def import_engine() -> None:
    """Import :data:`ENGINE`; RuntimeError if that imported SymPy (it would no longer be what a call pays)."""
    had_sympy = "sympy" in sys.modules
    for name in ENGINE:
        importlib.import_module(name)
    if "sympy" in sys.modules and not had_sympy:
        raise RuntimeError("importing symsched's numeric engine imported SymPy")
