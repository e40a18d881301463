"""Keras models: the backbone registry, the factories, model files and the fine-tuning cut."""
