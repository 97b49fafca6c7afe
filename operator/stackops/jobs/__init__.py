"""Work stackops Jobs do inside the cluster, run by `stackops job ...` from the operator's image."""
