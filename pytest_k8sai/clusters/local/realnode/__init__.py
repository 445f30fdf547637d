"""The real-node tier: kubelet + containerd + runc beside the local control plane."""
