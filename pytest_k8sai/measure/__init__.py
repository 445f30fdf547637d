"""Collectors and statistics: what the suites measure and how."""
