"""The local tier: upstream components built from Go modules, run as plain processes."""
