"""Secure defaults of the rendered cloud: pods confined, no API token where none is needed, token
caches encrypted, guest consoles on the node's management address."""

from __future__ import annotations

import configparser
from typing import Any

from stackops.api.models import OpenStackCloud
from stackops.credentials import PLACEHOLDER_PREFIX
from stackops.plan import plan
from stackops.services.identity import AUTHTOKEN_CACHE_KEY
from tests.conftest import cloud
from tests.support.rendered import find, secret_data

# the only pods that talk to the Kubernetes API: RabbitMQ's peer discovery lists its Service's endpoints
API_CLIENTS = {"rabbitmq"}


def pods(rendered_cloud: OpenStackCloud) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = []
    for obj in plan(rendered_cloud).objects():
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            found.append((obj, obj["spec"]["template"]["spec"]))
    return found


def test_every_pod_runs_under_the_runtime_seccomp_profile_and_only_api_clients_hold_a_token(
    example: OpenStackCloud,
) -> None:
    for obj, pod in pods(example):
        name = obj["metadata"]["name"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        service = obj["metadata"]["labels"]["app.kubernetes.io/name"]
        assert pod["automountServiceAccountToken"] is (service in API_CLIENTS and obj["kind"] == "StatefulSet"), name


def test_kolla_pods_keep_their_volume_group_and_stackops_jobs_run_as_non_root() -> None:
    rendered = plan(cloud())
    api = find(rendered, "Deployment", "keystone", "api")["spec"]["template"]["spec"]["securityContext"]
    assert api == {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 42425}
    job = find(rendered, "Job", "placement", "registration")["spec"]["template"]["spec"]["securityContext"]
    assert job["runAsNonRoot"] is True and job["runAsUser"] == 65532


def test_every_token_cache_is_encrypted_with_the_clouds_own_key() -> None:
    rendered = plan(cloud())  # placeholder credentials: each value says which credential it is
    for service, file_name in (
        ("placement", "placement.conf"),
        ("glance", "glance-api.conf"),
        ("nova", "nova.conf"),
        ("neutron", "neutron.conf"),
        ("cinder", "cinder.conf"),
        ("heat", "heat.conf"),
    ):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(secret_data(rendered, f"demo-{service}-config")[file_name])
        section = parser["keystone_authtoken"]
        assert section["memcache_security_strategy"] == "ENCRYPT", service
        assert section["memcache_secret_key"] == f"{PLACEHOLDER_PREFIX}{AUTHTOKEN_CACHE_KEY}", service


def test_guest_consoles_listen_on_the_nodes_management_address() -> None:
    rendered = plan(cloud())
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(secret_data(rendered, "demo-nova-compute-config")["nova.conf"])
    assert parser["vnc"]["server_listen"] == "$my_ip" and parser["vnc"]["server_proxyclient_address"] == "$my_ip"
    agent = find(rendered, "DaemonSet", "nova", "compute")["spec"]["template"]["spec"]
    compute = next(c for c in agent["containers"] if c["name"] == "nova-compute")
    assert {"name": "OS_DEFAULT__MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}} in compute["env"]
