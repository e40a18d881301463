"""Training: callbacks and logging, the head on cached features, fine-tuning."""
