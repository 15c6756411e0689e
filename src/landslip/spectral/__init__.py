"""Spectral processing: band names and band sets, pan-sharpening, fusion quality metrics."""
