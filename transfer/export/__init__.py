"""The serving export: SavedModel, TFLite float and int8, labels."""
