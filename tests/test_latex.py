"""derivations/ holds exactly what `symsched latex --out derivations` generates, and it compiles."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from symsched.cli import main
from symsched.symbolic.latex import render_all
from tex_helpers import overfull, run_pdflatex

DERIVATIONS = Path(__file__).resolve().parents[1] / "derivations"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("latex")
    assert main(["latex", "--out", str(out)]) == 0
    return out


def test_derivations_are_in_sync_with_the_code(generated: Path) -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in DERIVATIONS.glob("*.tex")}
    fresh = {p.name: p.read_text(encoding="utf-8") for p in generated.glob("*.tex")}
    assert sorted(committed) == sorted(fresh), "run `symsched latex --out derivations`"
    for name, text in fresh.items():
        assert committed[name] == text, f"derivations/{name} is stale: run `symsched latex --out derivations`"


def test_every_sampler_file_has_its_parts(generated: Path) -> None:
    for stem in ("ddim", "ddpm", "ddpm_beta", "euler", "heun"):
        text = (generated / f"{stem}.tex").read_text()
        for needle in ("g(S)", "H = ", "P_{\\mathrm{white}}", "P_{\\mathrm{exact}}", "\\mathrm{KL}", "W_2"):
            assert needle in text, f"{stem}.tex lacks {needle}"
    master = (generated / "symsched.tex").read_text()
    assert "\\documentclass" in master and "\\input{ddim}" in master


def test_ddim_shows_the_angle_form(generated: Path) -> None:
    text = (generated / "ddim.tex").read_text()
    assert "Angle form" in text and "\\cos" in text and "\\theta" in text


def test_the_rendered_angle_form_is_the_rotation_it_claims() -> None:
    """ddim.tex says "which SymPy confirms equals" the rotation: the check behind that sentence
    (kept out of the renderer, which every `symsched report` / `symsched latex` may run)."""
    import sympy as sp

    from symsched.symbolic.latex import angle_gains

    _, g_theta, rotation = angle_gains()
    assert sp.simplify(sp.expand_trig(g_theta - rotation)) == 0
    assert sp.simplify(sp.expand_trig(g_theta - 2 * rotation)) != 0  # the check can fail


def test_the_cli_serves_the_same_files_from_the_cache(generated: Path) -> None:
    from symsched import _latex_cache

    entry = _latex_cache.cache_dir() / "all.json"
    assert entry.is_file()  # written by the `generated` run (or an earlier one in this session)
    cached = _latex_cache.render_all()
    assert cached == {p.name: p.read_text(encoding="utf-8") for p in generated.glob("*.tex")}


def test_single_sampler_and_unknown_sampler(tmp_path: Path) -> None:
    files = render_all("euler")
    assert set(files) == {"euler.tex", "symsched.tex"}
    with pytest.raises(ValueError, match="sampler must be one of"):
        render_all("plms")


def test_a_single_sampler_keeps_the_master_that_inputs_every_section(tmp_path: Path, generated: Path) -> None:
    """break-test 50: `symsched latex --sampler ddim --out derivations` rewrote symsched.tex to input ddim alone
    (21 inputs became 1); break-test 54: a master written for one section in an empty folder never input the
    sections written there later. The master now inputs every section present in --out, in the usual order."""
    out = tmp_path / "d"
    shutil.copytree(generated, out)
    master = (out / "symsched.tex").read_text()
    assert master.count("\\input{") > 1
    assert main(["latex", "--sampler", "ddim", "--out", str(out)]) == 0
    assert (out / "symsched.tex").read_text() == master
    assert (out / "ddim.tex").read_text() == (generated / "ddim.tex").read_text()
    alone = tmp_path / "alone"
    assert main(["latex", "--sampler", "ddim", "--out", str(alone)]) == 0
    assert sorted(p.name for p in alone.iterdir()) == ["ddim.tex", "symsched.tex"]
    assert (alone / "symsched.tex").read_text().count("\\input{") == 1
    assert main(["latex", "--sampler", "ddpm", "--out", str(alone)]) == 0
    inputs = [ln for ln in (alone / "symsched.tex").read_text().splitlines() if ln.startswith("\\input{")]
    assert inputs == ["\\input{ddim}", "\\input{ddpm}", "\\input{ddpm_beta}"]  # the full master's order
    full = [ln for ln in master.splitlines() if ln.startswith("\\input{")]
    assert [ln for ln in full if ln in inputs] == inputs


def test_the_sum_of_products_multiplies_by_the_gains_of_the_steps_after(generated: Path) -> None:
    """break-test 50: with levels numbered (K) noisiest ... (1) and g_k, n_k the step that leaves level k, the steps
    after step k are j < k (the printed two-level formula multiplies n_2 by g_1^2); the text said prod_{j>k}."""
    seen = 0
    for path in generated.glob("*.tex"):
        text = path.read_text()
        if "sum-of-products" in text:
            seen += 1
            assert "for the step that leaves level $k$" in text and "\\prod_{j<k} g_j^2" in text, path.name
            assert "\\prod_{j>k}" not in text, path.name
    assert seen >= 5


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex installed: compile step skipped")
def test_latex_compiles_with_pdflatex(generated: Path) -> None:
    proc = run_pdflatex(generated, "symsched")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (generated / "symsched.pdf").exists()
    # every line fits the page (the multistep matrices printed on one line overran by up to 6 m until 6 December;
    # tests/test_latex_layout.py shows this check failing on such a line)
    wide = overfull(generated, "symsched")
    assert wide == [], wide[:5]


def test_plan_lines_render_levels_as_math_and_keep_the_whole_paragraph(generated: Path) -> None:
    """break-test 45: the Plan line printed ``sigma\\_\\{i+1\\}`` (literal braces in the PDF), was cut after the
    docstring's first line ("... on the last step and at"), and the state was printed twice."""
    dpm2 = (generated / "dpm_2.tex").read_text()
    assert "Plan: DPM-Solver-2 while $\\sigma_{i+1}$ $>$ 0" in dpm2 and "\\_\\{" not in dpm2  # > as math (OT1)
    deis = (generated / "deis_multistep.tex").read_text()
    plan = next(line for line in deis.splitlines() if line.startswith("Plan:"))
    assert plan.endswith("never at the clean level).") and "\\texttt{step}" in plan
    two_m = (generated / "dpmpp_2m.tex").read_text()
    assert "$y = (x, D_{i-1})$ and" in two_m and "($x$, $D_{i-1}$)" not in two_m


def test_every_section_defines_its_start_variance_in_its_own_scale(generated: Path) -> None:
    """Audit of 4 December: the state-space sections started from an undefined v_init (only the DDIM/DDPM sections,
    read first, said v_init = 1, 6400x off for a white start at Karras' sigma = 80). Each section now says its own;
    the VE one is checked against the engine: a one-step dpmpp_2m from sigma = 3 outputs H^2 v_init, v_init = 9."""
    import re

    import numpy as np

    import symsched

    want = {"vp": "v_{\\mathrm{init}} = 1$ (white start) or $\\lambda_{K} = S \\bar{\\alpha}_{K} - "
                  "\\bar{\\alpha}_{K} + 1$ (exact start)",
            "ve": "v_{\\mathrm{init}} = \\sigma_{K}^{2}$ (white start) or $S + \\sigma_{K}^{2}$ (exact start)",
            "flow": "v_{\\mathrm{init}} = 1$ (white start) or $S \\left(1 - t_{K}\\right)^{2} + t_{K}^{2}$ (exact "
                    "start)"}
    from symsched.symbolic.latex import SECTIONS

    scalar = {n for _, n, _ in SECTIONS}
    for name in symsched.SAMPLERS:
        text = (generated / f"{name}.tex").read_text()
        process = "flow" if name.startswith("flow_") else "ve" if name in symsched.VE_SAMPLERS else "vp"
        # the noisiest level: K in the scalar sections (levels K, ..., 1 from the clean end, as they say); 0 in the
        # state-space ones (audit of 4 December: they index levels 0, ..., K-1 from the noisiest, and sigma_(K) read
        # as the clean level)
        index = "{K}" if name in scalar else "{0}"
        if name in scalar:
            assert "levels are numbered from the clean end" in text, name
        expected = want[process].replace("{K}", index)
        if name not in scalar:  # there lambda_j is half the log-SNR (diffusers' notation): the value stands alone
            expected = expected.replace("\\lambda_{0} = ", "")
        assert expected in text, name
        # no new-state line that merely repeats a stage of the same name (LMS printed x' = x' eight times)
        assert not re.search(r"\\begin\{equation\*\}\n(\S+') = \1\n", text), name
    S = np.array([0.5, 2.0])
    P = symsched.output_spectrum_ve(S, [3.0], sampler="dpmpp_2m")
    H = symsched.transfer_function_ve(S, [3.0], sampler="dpmpp_2m")
    np.testing.assert_allclose(P, H**2 * 9.0, rtol=1e-12)


@pytest.mark.parametrize("name,n_text,n_of,end", [
    ("deis_multistep", "K - 1", lambda K: K - 1, "(at the last level $\\bar\\alpha_{K-1}$: no step to the clean level)"),
    ("unipc_multistep", "2K - 1", lambda K: 2 * K - 1, "(to the clean level)"),
    ("dpmpp_2m", "K", lambda K: K, "(to the clean level)"),
    ("lms", "K", lambda K: K, "(to the clean level)"),
])
def test_the_output_spectrum_paragraph_counts_the_plans_steps(generated: Path, name: str, n_text: str, n_of,
                                                               end: str) -> None:
    """Audit of 4 December: every state-space section said "P = C[0, 0] after the last step (to the clean level)",
    H = A_{K-1} ... A_0: wrong for DEIS (K - 1 steps, ending at the last level) and UniPC (2K - 1 steps). The
    count is checked here against the plan itself for K = 5 and 6."""
    from symsched.symbolic import get_sampler

    text = (generated / f"{name}.tex").read_text()
    assert f"($n = {n_text}$ for $K$ levels)" in text and f"after the last step {end}" in text
    smp = get_sampler(name)
    for K in (5, 6):
        assert len(smp.steps_for(K)) == n_of(K)
    assert "_{K}" not in text  # levels 0 .. K-1 from the noisiest here (the scalar sections' start is K)


def test_every_symbol_of_the_sde_and_churn_sections_is_defined(generated: Path) -> None:
    """Audit of 4 December: dpmpp_sde used noises a, b and the parameter r without saying what they are; euler and
    heun used gamma_i and s_noise of the churn, defined only in dpm_2; the ancestral sections used sigma_up/down."""
    sde = (generated / "dpmpp_sde.tex").read_text()
    assert "$a, b \\sim \\mathcal N(0, 1)$" in sde and "$r$: k-diffusion's parameter" in sde
    for name in ("euler", "heun", "dpm_2"):
        text = (generated / f"{name}.tex").read_text()
        assert "\\gamma_i = \\min(s_{\\mathrm{churn}}/K, \\sqrt2 - 1)" in text and "s_{\\mathrm{noise}}" in text, name
    for name in ("euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "euler_ancestral_discrete"):
        text = (generated / f"{name}.tex").read_text()
        assert "\\sigma_{\\downarrow} = \\sqrt{" in text or "\\sigma_{\\downarrow}^2 = " in text, name


def test_every_operator_and_index_convention_is_defined_where_it_is_used() -> None:
    """audit of 4 December: expm1 appeared in three sections as an operator no text defined; DDIM's general angle
    product gave no range nor theta_0; Euler's and Heun's churn steps used k-diffusion's sigma_i -> sigma_{i+1}
    beside the section's sigma_(K), ..., sigma_(1) without saying so."""
    from symsched.symbolic.latex import render_all

    files = render_all()
    users = [name for name, text in files.items() if "\\operatorname{expm}_{1}" in text]
    assert users  # (the premise: the SDE samplers' sections use it)
    for name in users:  # defined before its first use (re-audit of 6 December: two pages after it)
        text = files[name]
        definition = text.find("\\operatorname{expm}_{1}(u) = e^{u} - 1")
        assert 0 <= definition <= text.find("\\operatorname{expm}_{1}"), name
    ddim = next(text for name, text in files.items() if name.startswith("ddim"))
    assert "\\prod_{i=0}^{K-1} \\cos^2(\\theta_i - \\theta_{i+1})$ with $\\theta_0 = 0$" in ddim
    for name in ("euler", "heun"):
        text = next(t for n, t in files.items() if n.split(".")[0] == name)
        assert "numbered as the library numbers them" in text, name


def test_prose_defines_h_before_using_it_and_prints_indices_as_math(generated: Path) -> None:
    """audit 5 Dec: the SDE and 2S-ancestral sections used the step h (in e^{-eta h}, t + h/2) without defining it;
    plan lines printed sigma_down against the sections' sigma_downarrow, and "K - 1" as text (a hyphen)."""
    import re

    for name in ("dpmpp_2m_sde", "dpmpp_3m_sde", "dpmpp_2s_ancestral"):
        text = (generated / f"{name}.tex").read_text()
        first_use = min(i for i in (text.find(r"\eta h}"), text.find("h/2")) if i >= 0)
        assert 0 <= text.find("$h = ") < first_use + 40, name  # defined before, or right at, its first use
    for path in generated.glob("*.tex"):
        plan = "\n".join(line for line in path.read_text().splitlines() if line.startswith("Plan:"))
        assert "_{down}" not in plan and "_{up}" not in plan, path.name
        outside_math = re.sub(r"\$[^$]*\$", "", plan)
        assert not re.search(r"\b[iKn] [-+] \d", outside_math), (path.name, outside_math)


def test_a_samplers_settings_are_rendered_where_they_are_given(tmp_path: Path, capsys) -> None:
    """Audit of 6 December: `report --sampler dpmsolver_multistep --option algorithm_type=sde-dpmsolver++` wrote the
    default (deterministic) derivation, and `symsched latex` could render no other setting. `latex --option` renders
    the setting (its own cache entry), the report's derivations follow its --option, and an option without --sampler,
    or one the sampler lacks, is one line and exit 2."""
    from symsched.commands import report

    out = tmp_path / "sde"
    assert main(["latex", "--sampler", "dpmsolver_multistep", "--option", "algorithm_type=sde-dpmsolver++", "--out",
                 str(out)]) == 0
    tex = (out / "dpmsolver_multistep.tex").read_text()
    assert "\\section{\\texttt{DPMSolverMultistepScheduler} (SDE-DPM-Solver++, midpoint)}" in tex
    default = render_all("dpmsolver_multistep")["dpmsolver_multistep.tex"]
    assert "SDE-DPM-Solver++" not in default and tex != default
    assert render_all("lms", order=2)["lms.tex"].count("\\section{LMS (k-diffusion, order 2)}") == 1
    assert list(render_all("ddpm", variance="beta")) == ["ddpm_beta.tex", "symsched.tex"]
    for args, needle in ((["--option", "order=2"], "give the sampler it sets with --sampler"),
                         (["--sampler", "lms", "--option", "order=7"], "order must be one of 1, 2, 3, 4 (default 4)"),
                         (["--sampler", "lms", "--option", "order=2", "--option", "order=3"], "at most once")):
        capsys.readouterr()
        assert main(["latex", *args, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    ctx = type("Ctx", (), {"args": type("A", (), {"sampler": "lms"})(), "settings": {"order": 2, "eta": 0.5}})()
    assert report._report_options(ctx) == {"order": 2}  # the structural setting, not eta
    assert report._latex_key(["ddpm", "lms"], {"order": 2}) != report._latex_key(["ddpm", "lms"])
    files = report._render_samplers(["ddpm", "lms"], "lms", {"order": 2})
    assert "\\section{LMS (k-diffusion, order 2)}" in files["lms.tex"] and "ddpm.tex" in files


def test_a_sampler_that_stops_before_the_clean_level_names_none(generated: Path) -> None:
    """LaTeX review of 6 December: deis_multistep.tex said its levels run 'then the clean level' while its output
    paragraph said there is no step to it; the index sentence now follows the plan (DEIS, DPM-Solver with
    final_sigmas_type='sigma_min'), and the samplers that do step to it keep saying so."""
    from symsched.symbolic.latex import render_sampler

    deis = (generated / "deis_multistep.tex").read_text()
    assert "then the clean level" not in deis and "no step to the clean level" in deis
    sigma_min = render_sampler("dpmsolver_multistep", final_sigmas_type="sigma_min")
    assert "then the clean level" not in sigma_min and "the sampler stops there" in sigma_min
    assert "then the clean level $\\sigma_K = 0$" in (generated / "dpmpp_2m.tex").read_text()


def test_ddpm_beta_names_the_sampler_that_writes_it() -> None:
    with pytest.raises(ValueError, match=r"ddpm_beta.tex is the 'beta' section of ddpm, written by sampler='ddpm'"):
        render_all("ddpm_beta")


def test_no_exponential_of_logarithms_is_printed(generated: Path) -> None:
    """LaTeX review of 6 December: the SDE samplers printed e^{eta log sigma_{i+1}} e^{-eta log sigma_i} (SymPy's
    form of (sigma_{i+1}/sigma_i)^eta) 6-36 times per file; they are powers now (the formulas' values were checked
    against output_spectrum by an independent transcription of the files, to 6e-16)."""
    import re

    for f in sorted(generated.glob("*.tex")):
        assert not re.search(r"e\^\{[^{}]*\\log", f.read_text()), f.name
    # the damping as k-diffusion writes it, (-h * eta).exp(), in its step h = log(sigma_i / sigma_{i+1})
    assert "e^{- \\eta h_{i}}" in (generated / "dpmpp_2m_sde.tex").read_text()


# -- the first step from pure noise (alpha_bar = 0, sigma = inf, t = 1) -------------------------------------------
def _first_step_limit(name: str, kind: str, variant: str = "", values: tuple = ()) -> tuple:
    """(A_00, sum_k B_0k^2) of ``kind`` leaving pure noise, in the VP scale (the limit every consumer uses)."""
    from symsched.symbolic import get_sampler
    from symsched.symbolic.limits import vp_step

    smp = get_sampler(name, variant)
    modes = tuple("zero" if j == 0 else "" for j in smp.kinds[kind].slots)
    A, B = vp_step(smp, kind, modes, values)
    return A[0, 0], sum(b**2 for b in B.row(0))


def _hand_limits() -> list:
    """Limits derived by hand from each library's update (not by the code under test): at alpha_bar = 0 the exact
    denoiser gives x0_hat = 0 and eps_hat = x (VP), D(x; sigma) = S x/(S + sigma^2) -> 0 relative to x (VE)."""
    import sympy as sp

    from symsched.symbolic.symbols import alpha_bar_s as a, eta, param, sigma_s as s

    vp = 1 / sp.sqrt(1 + s**2)  # x_vp / x_ve at sigma_s
    return [
        # DDIM: x_s = sqrt(a) x0_hat + sqrt(1 - a - sig^2) eps_hat + sig z, sig^2 = eta^2 (1 - a) at alpha_bar_t = 0
        ("ddim", "", "step", (("eta", "+"),), sp.sqrt((1 - eta**2) * (1 - a)), eta**2 * (1 - a)),
        ("ddim", "", "step", (("eta", "0"),), sp.sqrt(1 - a), 0),
        # DDPM: posterior mean sqrt(a) beta/(1 - 0) x0_hat + sqrt(alpha_t) (...) x with alpha_t = 0 / a = 0;
        # posterior variance (1 - a)/(1 - 0) beta_t with beta_t = 1 - 0/a = 1; the beta variant's variance is beta_t
        ("ddpm", "posterior", "step", (), 0, 1 - a),
        ("ddpm", "beta", "step", (), 0, 1),
        # Euler (DDIM in sigma): x_s = D + sigma_s (x - D)/sigma_t -> sigma_s x/sigma_t; x_vp scales by sigma_t vp
        ("euler", "", "step", (("s_churn", "0"), ("s_tmin", "0"), ("s_tmax", "inf"), ("s_noise", "+")), s * vp, 0),
        # diffusers' EulerAncestralDiscrete: sigma_up -> sigma_s, sigma_down -> 0: x_s = D + sigma_s z -> sigma_s z
        ("euler_ancestral_discrete", "", "step", (), 0, s**2 * vp**2),
        # k-diffusion's dpm_2_ancestral, eta >= 1 from sigma = inf: its Euler branch x' = D = 0 and, in its code,
        # no noise (sample_dpm_2_ancestral adds noise only on the DPM-Solver-2 branch)
        ("dpm_2_ancestral", "", "to_zero", (("eta", "+"), ("s_noise", "+")), 0, 0),
        # k-diffusion's euler_ancestral, eta >= 1: the Euler branch to D = 0, then s_noise sigma_s z
        ("euler_ancestral", "", "to_zero", (("eta", "+"), ("s_noise", "+")), 0,
         param("s_noise") ** 2 * s**2 * vp**2),
        # ... eta < 1: sigma_up -> eta sigma_s, sigma_down -> sigma_s sqrt(1 - eta^2); Euler to sigma_down leaves
        # sigma_down x/sigma_t, then s_noise sigma_up z
        ("euler_ancestral", "", "step", (("eta", "+"), ("s_noise", "+")), s * sp.sqrt(1 - eta**2) * vp,
         (param("s_noise") * eta * s * vp) ** 2),
    ]


@pytest.mark.parametrize("case", _hand_limits(), ids=lambda c: f"{c[0]}-{c[1] or c[2]}-{c[3][:1]}")
def test_the_first_step_from_pure_noise_is_the_hand_derived_limit(case: tuple) -> None:
    import sympy as sp

    name, variant, kind, values, gain, noise = case
    got_gain, got_noise = _first_step_limit(name, kind, variant, values)
    assert sp.simplify(got_gain - gain) == 0, (name, got_gain)
    assert sp.simplify(got_noise - noise) == 0, (name, got_noise)


def test_dpm_2_from_pure_noise_is_the_limit_of_k_diffusions_update_at_huge_sigma() -> None:
    """DPM-2 from sigma = inf amplifies strong modes, A = (S + sigma_1^2)/(sigma_1 sqrt(1 + sigma_1^2)): the step
    as sample_dpm_2 writes it (midpoint sqrt(sigma_t sigma_s)), evaluated in mpmath at sigma_t = 1e40, agrees to
    the O(sigma_t^-1/2) distance from the limit (1e-6 at sigma_t = 1e12, measured)."""
    import mpmath
    import sympy as sp

    from symsched.symbolic.symbols import S as S_sym, sigma_s

    gain, noise = _first_step_limit("dpm_2", "step", values=(("s_churn", "0"), ("s_tmin", "0"), ("s_tmax", "inf"),
                                                             ("s_noise", "+")))
    assert noise == 0
    mpmath.mp.dps = 200  # the update cancels ~80 digits at sigma_t = 1e40
    try:
        for S, ss in [(100.0, 1.0), (1e-4, 0.3), (3.0, 20.0)]:
            S_, s_, t = mpmath.mpf(S), mpmath.mpf(ss), mpmath.mpf(10) ** 40
            mid = mpmath.sqrt(t * s_)
            x = mpmath.mpf(1)
            d = (x - S_ / (S_ + t**2) * x) / t
            x2 = x + d * (mid - t)
            d2 = (x2 - S_ / (S_ + mid**2) * x2) / mid
            ve_gain = x + d2 * (s_ - t)
            vp_gain = ve_gain * mpmath.sqrt(1 + t**2) / mpmath.sqrt(1 + s_**2)
            want = float(gain.subs({S_sym: sp.Float(S), sigma_s: sp.Float(ss)}))
            assert float(vp_gain) == pytest.approx(want, rel=1e-15)
    finally:
        mpmath.mp.dps = 15


def test_heun_from_pure_noise_is_undefined() -> None:
    from symsched.symbolic.limits import UndefinedStep

    with pytest.raises(UndefinedStep, match="unbounded"):
        _first_step_limit("heun", "step", values=(("s_churn", "0"), ("s_tmin", "0"), ("s_tmax", "inf"),
                                                  ("s_noise", "+")))


def test_every_section_states_its_first_step_from_pure_noise(generated: Path) -> None:
    """The derivations state what a zero-terminal-SNR or flow-matching schedule's first step does (issue 11's
    alpha_bar = 0 limit), in each sampler's file; the DDIM one is issue 11's fact: from a white start, variance
    1 - alpha_bar_s after the first step for every eta."""
    stems = [p.stem for p in generated.glob("*.tex") if p.stem not in ("symsched", "sde")]
    assert len(stems) == 20  # every sampler section (sde.tex is the continuous-time schemes)
    for stem in stems:
        assert "\\subsection*{From pure noise}" in (generated / f"{stem}.tex").read_text(), stem
    ddim = (generated / "ddim.tex").read_text()
    assert "for $0 \\le \\eta \\le 1$" in ddim and "v_s = g_0^2 + n_0 = 1 - \\bar{\\alpha}_s" in ddim
    heun = (generated / "heun.tex").read_text()
    assert "cannot start at pure noise (a one-level schedule takes step \\texttt{final} instead)" in heun
    # review of 6 December: the churn paragraph's one-level plan is its own setting's (churn_final), not the default's
    assert "cannot start at pure noise (a one-level schedule takes step \\texttt{churn\\_final} instead)" in heun
    dpm2a = (generated / "dpm_2_ancestral.tex").read_text()
    assert ("With the default parameters ($\\eta = 1$) or $\\eta = 2$ the plan takes step \\texttt{to\\_zero} first"
            in dpm2a)
    assert "With $\\eta = 0$ or $\\eta = 0.5$ the plan takes step \\texttt{step} first" in dpm2a
    assert "C^{\\mathrm{VP}}_1[0, 0] = A_{00}^2 + \\textstyle\\sum_k B_{0k}^2 = 0" in dpm2a
    for stem in ("euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde"):  # eta = 1 in float64
        assert "the limit of the library's float64 decision" in (generated / f"{stem}.tex").read_text(), stem
    # audit of 6 December: a flow sample at t = 1 is the noise itself (variance 1), not of infinite variance
    flow = (generated / "flow_match_euler.tex").read_text()
    assert "infinite variance" not in flow and "(the flow scale at $t = 1$)" in flow
    assert "infinite variance" in (generated / "euler.tex").read_text()


def test_latex_draws_a_progress_bar_while_rendering_on_a_terminal(tmp_path, capsys, monkeypatch) -> None:
    """Audit of 6 December: `symsched latex` rendered for ~15 s on an empty cache without a sign of life; the bar
    counts the sections as SymPy renders them (on a terminal, not with --no-progress, never on a cache hit)."""
    import sys

    from symsched.symbolic.latex import render_all as render

    calls: list[str] = []
    files = render("ddpm", progress=calls.append)
    assert calls == ["ddpm.tex", "ddpm_beta.tex"] and set(files) == {"ddpm.tex", "ddpm_beta.tex", "symsched.tex"}
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(tmp_path / "cache"))  # an empty cache: the sections are rendered
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["latex", "--sampler", "ddim", "--out", str(tmp_path / "a")]) == 0
    assert "symsched latex: 1section" in capsys.readouterr().err  # (the count: the callback reached the bar)
    monkeypatch.setenv("SYMSCHED_CACHE_DIR", str(tmp_path / "cache2"))  # empty again: rendered, without the bar
    assert main(["latex", "--sampler", "ddim", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert "symsched latex" not in capsys.readouterr().err
