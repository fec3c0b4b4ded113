"""k8snetdoctor: finds the root cause of Kubernetes network faults and says how to fix them."""

__version__ = "0.1.0"
