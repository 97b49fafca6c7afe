"""OpenStack release upgrades: what services declare, the order they upgrade in, and the runner.

`declare` is what service modules import (pure); `plan` turns a cloud and the release it runs into
the ordered upgrade (pure); `record` is the progress kept in the cloud's status; `run` drives one
reconcile pass against the cluster. How it shows to people is the kopf layer's
(stackops.reconcile.upgrade_status), above this package. Importing this package loads none of them,
so service modules can import `declare` without pulling in the cluster I/O.
"""
