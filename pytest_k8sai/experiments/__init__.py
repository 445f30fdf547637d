"""Experiments: run a setup against a cluster and return what was measured."""
