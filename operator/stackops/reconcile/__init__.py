"""Kubernetes I/O: the operator's handlers, applying plans, status and conditions."""
