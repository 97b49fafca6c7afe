"""A cloud with every optional service enabled, on the real control plane with kwok nodes: the
operator applies it (every Job, Deployment, StatefulSet and DaemonSet the services render, the
certificates of its CA in the credentials Secret) and it goes Ready. kwok's Ready: no pod runs
here (tests/node runs the default cloud's pods for real; tests/real each service's processes)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from stackops.api.models import OpenStackCloudSpec, SwiftSpec, role_labels
from stackops.devcluster.nodes import COMPUTE_LABEL
from stackops.services import all_services
from tests.support.cluster import NAMESPACE, Env, operated_cluster

CLOUD = "every"
# the labels swift's storage servers select (spec.services.swift.nodeSelector's default) and the storage role
SWIFT_LABELS = {**SwiftSpec().node_selector.match_labels, **role_labels("storage")}
# the services a cloud runs only when asked to
OPT_IN_SERVICES = [s.name for s in all_services() if not s.enabled(OpenStackCloudSpec())]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with operated_cluster(tmp_path_factory.mktemp("every"), compute_nodes=2, volumes=30) as environment:
        yield environment


def test_a_cloud_with_every_service_enabled_goes_ready(env: Env) -> None:
    nodes = sorted(n.metadata.name for n in env.core.list_node(label_selector=f"{COMPUTE_LABEL}=true").items)
    for node in nodes:  # storage nodes too: swift's storage servers (pinned to them), manila's and cinder's LVM agents
        env.core.patch_node(node, {"metadata": {"labels": SWIFT_LABELS}})
    devices = [{"name": d, "hostPath": f"/srv/node/{d}"} for d in ("sdb", "sdc")]
    services: dict[str, dict[str, Any]] = {name: {"enabled": True} for name in OPT_IN_SERVICES}
    services["swift"]["nodes"] = [{"node": n, "zone": i, "devices": devices} for i, n in enumerate(nodes, 1)]
    env.create(env.cloud_body(CLOUD, {"services": services}))
    ready = env.wait_ready(CLOUD, timeout=600)
    assert {c["type"]: c["status"] for c in ready["status"]["conditions"]}["Ready"] == "True"
    secret = env.core.read_namespaced_secret(f"{CLOUD}-credentials", NAMESPACE).data
    issued = {k for k in secret if k.startswith("tls-")}
    # the backends' and OVN's clients', and one of every service with an API (all but ceilometer)
    apis = [f"{s.name}-api" for s in all_services() if s.apis]
    assert len(apis) == len(all_services()) - 4  # MariaDB, RabbitMQ, memcached, ceilometer
    assert {"keystone-api", "horizon-api", "swift-api", "octavia-api"} <= set(apis)
    servers = ("mariadb", "rabbitmq", "memcached", "ovn-nb", "ovn-sb", "ovn-client", *apis)
    assert issued == {"tls-ca.crt", "tls-ca.key", *(f"tls-{s}.{ext}" for s in servers for ext in ("crt", "key"))}
    assert b"BEGIN CERTIFICATE" in base64.b64decode(secret["tls-mariadb.crt"])
    enabled = {
        d.metadata.labels["app.kubernetes.io/name"]
        for d in env.apps.list_namespaced_deployment(NAMESPACE, label_selector=f"stackops.dev/cloud={CLOUD}").items
    }
    assert set(OPT_IN_SERVICES) <= enabled, enabled  # each runs a Deployment (its API, ceilometer's agents)
