"""The cache of resized images: the TFRecord schema, the encoder and the cache's meta file."""
