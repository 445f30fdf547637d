"""``k8sai preflight``: what a cluster has, what this identity may do there, and which suites
will run, read before anything is created (docs/preflight.md)."""
