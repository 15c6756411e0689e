"""Whole-scene prediction: sliding windows, blending, streaming output, vectorisation."""
