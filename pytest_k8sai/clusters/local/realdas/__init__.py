"""The real Dynamic Accelerator Slicer (openshift/instaslice-operator) on the local tier.

Its three binaries (das-webhook, das-scheduler, das-daemonset) are built offline from the
pinned source's vendor/ directory and run as supervised processes on 127.0.0.1, next to the
local control plane; the objects they need (CRDs, webhook configuration, a ClusterPolicy
stand-in) are read from that same source at run time. The das-operator itself is not run: it
only renders the three as Deployments and needs cert-manager. See docs/das-local.md.
"""
