"""Segmentation models: the registry, the paper's U-Net, losses, and the model bundle."""
