"""Whether a cloud works, not only whether its pods are Ready.

Two layers per service. Kubernetes: pods that crash-loop or cannot start, Jobs that failed
(`stackops.health.workloads`). OpenStack, through openstacksdk from the operator: keystone issues a
token, every catalog endpoint answers, and whatever the service module declares in
`Service.health_checks()` (`stackops.services.health_checks`). `stackops.health.monitor` runs them
periodically, each bounded in time and backing off while it fails, and sums them up per service.
"""
