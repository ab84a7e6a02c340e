"""IG-AE: Inverse Graphics Autoencoder pipeline (reference open implementation)."""

__version__ = "0.1.0"
