"""The library behind the pipeline's stages: transfer learning for image classifiers.

Nothing runs at import time; `stages/` holds the entry points that DVC runs.
"""
