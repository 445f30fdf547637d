"""The AI-conformance checks: one test per Kubernetes AI Conformance requirement id."""
