"""Autoencoders: build, load and save image autoencoders; the latent normalizer; the perceptual metric.

Modules (imported on demand, because ``diffusers`` alone takes seconds to import):

- :mod:`igae.autoencoder.model`: :class:`~igae.autoencoder.model.AEArchitecture` and
  :class:`~igae.autoencoder.model.Autoencoder`, a wrapper around ``diffusers.AutoencoderKL``
  that takes and returns images in [0, 1] (the only place that maps to [-1, 1] and back).
- :mod:`igae.autoencoder.normalizer`: ``tanh`` normalisation of latents and the background
  latent computed by encoding the background colour.
- :mod:`igae.autoencoder.perceptual`: the one perceptual metric (LPIPS or ST-LPIPS) used by
  training and evaluation alike.
"""
