"""OpenStack release upgrades: the order services upgrade in, the progress kept, and the runner.

What a service declares about its upgrade is beside the service contract (stackops.services.upgrades).
`plan` turns a cloud and the release it runs into the ordered upgrade (pure); `record` is the progress
kept in the cloud's status; `run` drives one reconcile pass against the cluster (stackops.kube). How
it shows to people is the kopf layer's (stackops.reconcile.upgrade_status), above this package.
"""
