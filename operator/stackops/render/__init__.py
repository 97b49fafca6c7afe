"""Pure rendering: spec + credentials -> Kubernetes objects. No network, no clock, no randomness."""
