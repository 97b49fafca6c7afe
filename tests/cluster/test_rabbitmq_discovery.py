"""RabbitMQ's Kubernetes peer discovery, for real: Debian's rabbitmq-server with the rendered
rabbitmq.conf asks the real API server for the cluster Service's endpoints, as the ServiceAccount
stackops renders for its pods, and finds its peers by the names the StatefulSet gives them. Without
the rendered RoleBinding the API server refuses, so the grant is exactly what discovery needs.

Only the API server's address and the service account files move (a pod finds them at
kubernetes.default.svc and /var/run/secrets/kubernetes.io/serviceaccount).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, utils

from stackops.devcluster.binaries import ensure_binaries
from stackops.devcluster.cluster import LocalCluster
from stackops.devcluster.install import ensure_namespace, wait_for
from stackops.plan import plan
from tests.conftest import cloud
from tests.support.rabbitmq import RabbitMQ
from tests.support.rendered import secret_data

NAMESPACE = "mq"
IDENTITY = f"system:serviceaccount:{NAMESPACE}:demo-rabbitmq"  # the rendered ServiceAccount


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[LocalCluster]:
    """A cluster of this module's own, auditing what the RabbitMQ pods' identity asks for."""
    ensure_binaries()
    with LocalCluster(audited_users=(IDENTITY,)) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def rendered() -> Any:
    return plan(cloud({"infrastructure": {"messaging": {"replicas": 3}}}, namespace=NAMESPACE))


@pytest.fixture(scope="module")
def peers(local_cluster: LocalCluster, rendered: Any) -> Iterator[set[str]]:
    """The rendered RabbitMQ objects applied; kwok runs the StatefulSet's pods (no real RabbitMQ in them),
    and the endpoints controller publishes them under the cluster Service."""
    ensure_namespace(local_cluster.api, NAMESPACE)
    objects = [o for s in rendered.steps if s.service == "rabbitmq" for o in s.objects]
    for obj in objects:
        if obj["kind"] == "StatefulSet":  # no PersistentVolumes here: the pods need none to be published
            obj["spec"].pop("volumeClaimTemplates")
            obj["spec"]["template"]["spec"]["volumes"].append({"name": "data", "emptyDir": {}})
        utils.create_from_dict(local_cluster.api, obj, namespace=NAMESPACE)
    core = client.CoreV1Api(local_cluster.api)

    def published() -> set[str]:
        with contextlib.suppress(client.ApiException):
            endpoints = core.read_namespaced_endpoints("demo-rabbitmq-cluster", NAMESPACE)
            return {a.hostname for subset in endpoints.subsets or [] for a in subset.addresses or []}
        return set()

    wait_for(lambda: len(published()) == 3, "3 RabbitMQ pods published by the cluster Service", timeout=60)
    yield published()


def service_account_files(cluster: LocalCluster, workdir: Path) -> dict[str, str]:
    """What a pod of the rendered StatefulSet has mounted: its ServiceAccount's token, CA, namespace."""
    core = client.CoreV1Api(cluster.api)
    token = core.create_namespaced_service_account_token(
        "demo-rabbitmq", NAMESPACE, {"spec": {"audiences": [], "expirationSeconds": 3600}}
    ).status.token
    files = {"token": token, "ca.crt": cluster.ca_file.read_text(), "namespace": NAMESPACE}
    for name, content in files.items():
        (workdir / name).write_text(content)
    return {f"cluster_formation.k8s.{key}_path": str(workdir / name)
            for key, name in (("token", "token"), ("cert", "ca.crt"), ("namespace", "namespace"))}  # fmt: skip


def boot(conf: str, files: dict[str, str], overrides: dict[str, str], asked: Callable[[], bool]) -> None:
    """Boot RabbitMQ with `conf` (keeping its peer discovery) until `asked` says discovery has run.
    Peers that are only kwok pods cannot be joined: what matters is what discovery asked for."""
    lines = [line for line in conf.splitlines() if line.split(" = ")[0] not in overrides]
    lines += [f"{key} = {value}" for key, value in overrides.items()]
    # a throwaway node: discovery runs before its TLS listeners start, which never read these files
    served = dict.fromkeys(("server.crt", "server.key", "ca.crt"), "")
    server = RabbitMQ("\n".join(lines), files["enabled_plugins"], files["erlang.cookie"], ("stackops", "unused"),
                      keep_peer_discovery=True, tls_files=files | served)  # fmt: skip
    server.launch()
    try:
        wait_for(asked, "RabbitMQ asking the API server for its peers", timeout=60)
    finally:
        server.kill()  # a throwaway node, stuck waiting for peers: no need to be gentle
        server.stop()


def test_peer_discovery_finds_the_statefulset_pods_through_the_api_server(
    local_cluster: LocalCluster, rendered: Any, peers: set[str], tmp_path: Path
) -> None:
    files = secret_data(rendered, "demo-rabbitmq-config")
    api = local_cluster.server.removeprefix("https://").split(":")
    overrides = {
        "cluster_formation.k8s.host": api[0],
        "cluster_formation.k8s.port": api[1],
        "cluster_formation.discovery_retry_limit": "2",
        "cluster_formation.discovery_retry_interval": "500",
        **service_account_files(local_cluster, tmp_path),
    }
    since = local_cluster.audit_line_count()
    boot(files["rabbitmq.conf"], files, overrides, lambda: bool(discovery_answers(local_cluster, since)))
    assert peers == {"demo-rabbitmq-0", "demo-rabbitmq-1", "demo-rabbitmq-2"}
    assert discovery_answers(local_cluster, since) and set(discovery_answers(local_cluster, since)) == {200}

    # without the rendered RoleBinding, the same identity may not read the endpoints
    client.RbacAuthorizationV1Api(local_cluster.api).delete_namespaced_role_binding("demo-rabbitmq", NAMESPACE)
    since = local_cluster.audit_line_count()
    boot(files["rabbitmq.conf"], files, overrides, lambda: bool(discovery_answers(local_cluster, since)))
    assert discovery_answers(local_cluster, since) and set(discovery_answers(local_cluster, since)) == {403}


def discovery_answers(cluster: LocalCluster, since: int) -> list[int]:
    """Status codes the API server gave the pods' identity for the cluster Service's endpoints."""
    return [
        e["responseStatus"]["code"]
        for e in cluster.audit_events(user=IDENTITY, since_line=since)
        if e.get("stage") == "ResponseComplete"
        and e["objectRef"].get("resource") == "endpoints"
        and e["objectRef"].get("name") == "demo-rabbitmq-cluster"
        and e["verb"] == "get"
    ]
