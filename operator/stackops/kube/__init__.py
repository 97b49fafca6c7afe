"""Kubernetes I/O, below the kopf layer: what the operator reads from and writes to the cluster.

`client` is the typed face on the API (get, list, apply, delete) and `kinds` the kinds it knows with
their REST paths; `readiness` and `pods` read live objects; `diagnosis` names why a workload waits;
`credentials_secret` keeps the cloud's credentials Secret; `engine` applies a plan step by step,
sending only what changed. Nothing here knows kopf, upgrades or health: `stackops.upgrade`,
`stackops.health` and `stackops.reconcile` build on it.
"""
