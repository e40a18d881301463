"""Frozen forward passes through the memo: their rows, each from the memo or computed, and
the version that keys them."""
