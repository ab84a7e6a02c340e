"""Training: the standard AE, the fine-tuning ablation and IG-AE, on one shared loop."""
