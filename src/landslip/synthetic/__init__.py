"""Synthetic SPOT-7-like scenes with known landslide truth."""
