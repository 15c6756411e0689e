"""landslip: landslide mapping from optical satellite imagery with a U-Net."""

__version__ = "0.1.0"

__all__ = ["__version__"]
