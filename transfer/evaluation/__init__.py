"""Evaluation: predictions on a cached split, metrics, reports and the picture."""
