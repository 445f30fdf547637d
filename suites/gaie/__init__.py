"""The gaie suite."""
