"""The small files the stages hand to each other (no TensorFlow here): the index of data/raw,
the split lists, the cache's meta.json and the user's corrections.csv."""
