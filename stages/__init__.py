"""The pipeline's entry points: one module per DVC stage, each a thin main() over `transfer`."""
