"""MIG: the catalogue of GPU instance profiles (data) and the placement planner (pure code)."""
