"""Access to the Kubernetes API and the cluster inventory."""
