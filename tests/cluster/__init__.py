"""The local Kubernetes control plane used by the tests and the demo (no container engine needed)."""
