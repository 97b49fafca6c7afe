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
# (its StatefulSet), swift's ring builder stores the rings in their Secret (its Job)
API_CLIENTS = {("rabbitmq", "server"), ("swift", "ring-builder")}


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
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        assert pod["automountServiceAccountToken"] is ((service, component) in API_CLIENTS), name


def test_kolla_pods_keep_their_volume_group_and_stackops_jobs_run_as_non_root() -> None:
    rendered = plan(cloud())
    api = find(rendered, "Deployment", "keystone", "api")["spec"]["template"]["spec"]["securityContext"]
    assert api == {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 42425}
    job = find(rendered, "Job", "placement", "registration")["spec"]["template"]["spec"]["securityContext"]
    assert job["runAsNonRoot"] is True and job["runAsUser"] == 65532


# Containers that may gain privileges, each for a reason docs/security.md gives: sudo and rootwrap
# (their images' root_helper) and privileged host agents.
MAY_ESCALATE = {
    "cinder-volume", "cinder-backup", "manila-share", "manila-data", "nova-libvirt", "nova-compute",
    "openvswitch-db", "openvswitch-vswitchd", "ovn-controller", "neutron-ovn-metadata-agent",
}  # fmt: skip


def test_kolla_containers_run_as_their_user_and_cannot_gain_privileges(example: OpenStackCloud) -> None:
    hardened = 0
    for obj, pod in pods(example):
        for container in pod["containers"]:
            security = container.get("securityContext") or {}
            if container["name"] in MAY_ESCALATE:
                continue
            where = f"{obj['metadata']['name']}/{container['name']}"
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities") == {"drop": ["ALL"]}, where
            assert not security.get("privileged"), where
            if "runAsUser" in security:  # Kolla containers state their image's user
                assert security["runAsNonRoot"] is True and security["runAsUser"] == pod["securityContext"]["fsGroup"]
                hardened += 1
    assert hardened, "no Kolla container states its user"


def test_sudo_and_privileged_containers_are_the_documented_ones() -> None:
    rendered = plan(cloud())
    volume = find(rendered, "DaemonSet", "cinder", "volume-lvm")["spec"]["template"]["spec"]["containers"][0]
    assert volume["securityContext"] == {"privileged": True}
    scheduler = find(rendered, "Deployment", "cinder", "scheduler")["spec"]["template"]["spec"]["containers"][0]
    assert scheduler["securityContext"]["allowPrivilegeEscalation"] is False


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


def test_the_infrastructure_servers_state_their_users_and_ovn_runs_as_root_without_capabilities() -> None:
    rendered = plan(cloud())
    for service, uid in (("mariadb", 42434), ("rabbitmq", 42439), ("memcached", 42457)):
        pod = find(rendered, "StatefulSet", service, "server")["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == uid
        assert pod["containers"][0]["securityContext"]["runAsUser"] == uid, service
    for component in ("nb-db", "northd"):
        kind = "Deployment" if component == "northd" else "StatefulSet"
        (container,) = find(rendered, kind, "neutron", component)["spec"]["template"]["spec"]["containers"]
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
