"""pytest-k8sai suites (installed as the package k8sai_suites)."""
