"""The das suite."""
