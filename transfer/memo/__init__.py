"""The per-image memo: its store, the code version in its keys, and the `memo` command."""
