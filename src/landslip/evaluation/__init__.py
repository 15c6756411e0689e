"""Evaluation: pixel and object metrics, reports, figures."""
