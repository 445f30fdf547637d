"""Kubernetes AI Conformance: the checklist filled from the run's checks (docs/conformance.md).

``evidence`` records what each check saw; ``requirements`` reads the program's requirement
files (shipped for 1.33-1.36, or given by path) and this project's notes per id;
``checklist`` turns outcomes, verdicts and evidence into the program's YAML layout.
"""
