"""End-to-end tests against a real Kubernetes API (the local control plane, or KUBECONFIG)."""
