"""Datasets: tiling, splits with leakage audit, the dataset folder, imports, torch loading."""
