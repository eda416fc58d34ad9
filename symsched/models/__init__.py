"""Learned denoisers for checking schedules beyond the Gaussian model.

``builtin:patches16`` is a small EDM-preconditioned denoiser (a 1.04 M-parameter residual MLP)
trained on one CPU core in under 10 minutes on :func:`patches16`, 16×16 greyscale patches of
scikit-image's bundled photographs (left 80 % of each photograph; the right 20 % is held out). Its weights ship
with the package as safetensors and load without unpickling; ``symsched train-demo`` retrains
them from the same seed.

Example::

    from symsched import models
    m = models.load_model("builtin:patches16")    # needs torch: pip install "symsched[torch]"
    x0_hat = m.denoiser(x_t, alpha_bar_t)          # (N, 16, 16) float64, alpha_bar_t in [0, 1] -> x̂0
    test = models.patches16("test")                # held-out patches, (6272, 16, 16) in [-1, 1]

Importing this package does not import torch; :func:`load_model` does.
"""

from .builtin import BUILTIN_MODELS, LearnedModel, load_model, weights_path
from .datasets import PATCHES16_IMAGES, patches16

__all__ = ["load_model", "LearnedModel", "BUILTIN_MODELS", "weights_path", "patches16", "PATCHES16_IMAGES"]
