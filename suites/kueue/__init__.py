"""The kueue suite."""
