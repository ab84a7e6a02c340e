"""Evaluation: image metrics (:mod:`igae.eval.metrics`), and later timing, tables, figures, report.

Submodules are imported on demand so that, e.g., table code does not pull in torch.
"""
