"""pytest-k8sai: check a Kubernetes cluster's AI stack and its performance SLOs with pytest."""

__version__ = "0.1.0"
