"""Autoencoders: build, load and save image autoencoders; the latent normalizer; the perceptual metric.

Modules (imported on demand, because ``diffusers`` alone takes seconds to import), each
importing only those above it:

- :mod:`igae.autoencoder.normalizer`: ``tanh`` normalisation of latents and its inverse.
- :mod:`igae.autoencoder.hub`: hub ids, offline detection, a fast reachability probe.
- :mod:`igae.autoencoder.loading`: a plain diffusers ``AutoencoderKL`` from a folder or a hub id.
- :mod:`igae.autoencoder.model`: :class:`~igae.autoencoder.model.AEArchitecture` and
  :class:`~igae.autoencoder.model.Autoencoder`, a wrapper around ``diffusers.AutoencoderKL``
  that takes and returns images in [0, 1] (the only place that maps to [-1, 1] and back).
- :mod:`igae.autoencoder.latents`: encoding in bounded batches; the background latent
  computed by encoding the background colour.
- :mod:`igae.autoencoder.calibration`: the normaliser scale calibrated to a target std;
  raw and normalised latent statistics.
- :mod:`igae.autoencoder.importing`: bring your own diffusers autoencoder; the one resolver
  of the AE folder a stage is given.
- :mod:`igae.autoencoder.perceptual`: the one perceptual metric (LPIPS or ST-LPIPS) used by
  training and evaluation alike.
"""
