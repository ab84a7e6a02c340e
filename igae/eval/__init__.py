"""Evaluation: image metrics (:mod:`igae.eval.metrics`), autoencoder quality and IG-AE's tri-plane fit
(:mod:`igae.eval.ae_quality`), and the summary of the per-scene NeRF fits (:mod:`igae.eval.nerf_summary`).
Tables, figures and the report page are built from these in :mod:`igae.report`.

Submodules are imported on demand so that, e.g., the summary code does not pull in torch.
"""
