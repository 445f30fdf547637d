"""Workload generators: the Jobs (and later traces and prompts) the suites submit."""
