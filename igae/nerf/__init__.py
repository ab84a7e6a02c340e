"""Per-scene NeRF fits in RGB and latent space: data, training, evaluation."""
