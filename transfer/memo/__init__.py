"""The per-image memo: its store, the keys of its rows, and the `memo` command."""
