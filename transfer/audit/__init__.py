"""The audit of a dataset on its cached features: near-duplicates and likely label errors."""
