"""The kopf layer: the operator's handlers, which pass a cloud gets (converge or upgrade, through
`stackops.upgrade.run`), the status and Events a pass writes, metrics, RBAC and leader election."""
