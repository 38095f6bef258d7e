"""Command-line tools for users of the operator (they act with the user's own kubeconfig and rights)."""
