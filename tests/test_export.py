"""symsched.export: conversions to and from diffusers / k-diffusion (no sampling here)."""

from __future__ import annotations

import numpy as np
import pytest

import symsched
from symsched.schedules import alpha_bar_to_sigmas
from symsched.export import from_diffusers, from_k_diffusion_sigmas, to_diffusers, to_k_diffusion_sigmas

from mc_helpers import linear_ddpm_alphas_cumprod

# numpy 2 warns about diffusers' own np.array(tensor) calls; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_k_diffusion_sigmas_round_trip():
    ab = np.array([0.01, 0.2, 0.5, 0.9])
    sig = to_k_diffusion_sigmas(ab)
    assert sig.shape == (5,) and sig[-1] == 0.0
    np.testing.assert_allclose(sig[:-1], np.sqrt((1 - ab) / ab), rtol=1e-15)
    np.testing.assert_allclose(sig[:-1], alpha_bar_to_sigmas(ab), rtol=1e-14)
    assert np.all(np.diff(sig) < 0)
    np.testing.assert_allclose(from_k_diffusion_sigmas(sig), ab, rtol=1e-14)
    np.testing.assert_allclose(from_k_diffusion_sigmas(sig[:-1]), ab, rtol=1e-14)
    with pytest.raises(ValueError, match="alpha_bar"):
        to_k_diffusion_sigmas(ab[::-1])
    with pytest.raises(ValueError, match="sigmas"):
        from_k_diffusion_sigmas([1.0, 2.0, 0.0])


def test_to_diffusers_sigmas_and_grid_timesteps():
    ab = np.array([0.05, 0.5, 0.95])
    d = to_diffusers(ab)
    assert list(d) == ["sigmas"] and d["sigmas"][-1] == 0.0 and len(d["sigmas"]) == 4
    grid = linear_ddpm_alphas_cumprod()
    t = [900, 400, 10]
    d = to_diffusers(grid[t], grid=grid)
    assert d == {"timesteps": t}
    # float32 grids (as diffusers stores them) match within rtol
    d = to_diffusers(grid[t], grid=grid.astype(np.float32))
    assert d == {"timesteps": t}
    with pytest.raises(ValueError, match="not on the grid"):
        to_diffusers([0.5], grid=grid)
    with pytest.raises(ValueError, match="grid"):
        to_diffusers(ab, grid=np.ones((2, 2)))


@pytest.mark.diffusers
def test_from_diffusers_validation_and_fields():
    diffusers = pytest.importorskip("diffusers")
    with pytest.raises(ValueError, match="DDIMScheduler"):
        from_diffusers(object())
    sch = diffusers.DDIMScheduler()  # clip_sample=True by default
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="clip_sample"):
        from_diffusers(sch)
    info = from_diffusers(sch, strict=False)
    assert any("clip_sample" in s for s in info.notes)
    sch = diffusers.DDIMScheduler(clip_sample=False)
    with pytest.raises(ValueError, match="set_timesteps"):
        from_diffusers(sch)
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="eta"):
        from_diffusers(sch, eta=2.0)
    info = from_diffusers(sch, eta=0.5)
    assert info.kwargs == {"sampler": "ddim", "eta": 0.5}
    assert info.alpha_bar.shape == (10,) and np.all(np.diff(info.alpha_bar) > 0)
    np.testing.assert_allclose(info.sigmas, np.sqrt((1 - info.alpha_bar) / info.alpha_bar))
    assert info.steps[-1] == (info.alpha_bar[-1], 1.0)
    assert info.consistent and info.final_alpha_bar == 1.0 and info.init_variance == 1.0

    sch = diffusers.DDPMScheduler(clip_sample=False, variance_type="learned_range")
    with pytest.raises(ValueError, match="variance_type"):
        from_diffusers(sch)
    # without set_timesteps DDPM runs every training step
    sch = diffusers.DDPMScheduler(clip_sample=False, variance_type="fixed_large", num_train_timesteps=50)
    info = from_diffusers(sch)
    assert info.alpha_bar.size == 50 and info.kwargs == {"sampler": "ddpm", "variance": "beta"}
    assert info.final_noise_variance == 0.0  # last timestep is 0: no noise there
    # zero terminal SNR puts a level at alpha_bar = 0
    sch = diffusers.DDIMScheduler(clip_sample=False, rescale_betas_zero_snr=True, timestep_spacing="trailing")
    sch.set_timesteps(10)
    with pytest.raises(ValueError, match="zero terminal SNR"):
        from_diffusers(sch)


@pytest.mark.diffusers
def test_from_diffusers_ddim_chaining_rules():
    diffusers = pytest.importorskip("diffusers")
    for spacing, K, ok in [("leading", 7, True), ("trailing", 10, True), ("trailing", 3, False),
                           ("linspace", 10, False), ("linspace", 1, True)]:
        sch = diffusers.DDIMScheduler(clip_sample=False, timestep_spacing=spacing)
        sch.set_timesteps(K)
        info = from_diffusers(sch, strict=False)
        assert info.consistent == ok, (spacing, K, info.notes)
        if not ok:
            with pytest.raises(ValueError, match="not a DDIM schedule"):
                from_diffusers(sch)


@pytest.mark.diffusers
def test_to_diffusers_drives_diffusers_schedulers():
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.DDPMScheduler(clip_sample=False)
    ab = sch.alphas_cumprod.double().numpy()[[999, 500, 100, 0]]
    sch.set_timesteps(**to_diffusers(ab, grid=sch.alphas_cumprod))
    np.testing.assert_array_equal(from_diffusers(sch).alpha_bar, ab)
    eul = diffusers.EulerDiscreteScheduler()
    ab = np.array([0.01, 0.3, 0.8])
    eul.set_timesteps(**to_diffusers(ab))
    info = from_diffusers(eul)
    np.testing.assert_allclose(info.alpha_bar, ab, rtol=1e-6)
    np.testing.assert_allclose(eul.sigmas.numpy(), to_k_diffusion_sigmas(ab), rtol=1e-6)
