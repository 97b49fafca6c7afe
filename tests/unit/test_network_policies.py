"""The cloud's NetworkPolicies, evaluated here as an enforcing network plugin would: label selectors
over the rendered pod templates, namespaces by their name label, host agents by their node's address.

Every pod of the cloud is isolated; each backend admits exactly its users; and every pod still
reaches every Service its own configuration names (found in its config files, command line and
environment, independently of the declarations the policies come from): the guard that a flow the
policies miss would break nothing unnoticed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stackops.api.models import OpenStackCloud
from stackops.api.validation import parse_cloud
from stackops.plan import Plan, enabled_services, plan
from stackops.render.naming import CLOUD_LABEL
from stackops.services.network_policies import flows_markdown
from stackops.services.openstack import OpenStackService
from tests.conftest import ROOT, cloud

NAMESPACE = "openstack"
MINIMAL = ROOT / "examples" / "minimal.yaml"
PRODUCTION = ROOT / "examples" / "production.yaml"
NODE_IP = "10.20.0.7"  # a node in production.yaml's nodeCIDRs
STRANGER_IP = "192.0.2.7"  # an address outside them
BACKENDS = ("mariadb", "rabbitmq", "memcached")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"


def load(path: Path) -> OpenStackCloud:
    return parse_cloud(yaml.safe_load(path.read_text()))


def with_policies(base: Path, **settings: Any) -> OpenStackCloud:
    document = yaml.safe_load(base.read_text())
    document["spec"]["networkPolicies"] = settings
    return parse_cloud(document)


# Kubernetes' semantics, in Python


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector against labels ({} selects everything)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        holds = {
            "In": present and labels[key] in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not holds:
            return False
    return True


@dataclass(frozen=True)
class Source:
    """Where a connection comes from: a pod (labels, namespace) or, for host networking, an address."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str = NAMESPACE
    address: str | None = None


def admits(peer: Mapping[str, Any], source: Source, namespace: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if source.address is None:
            return False  # pods of this test are told apart by labels, never by their addresses
        address = ipaddress.ip_address(source.address)
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
    if source.address is not None:
        return False  # a node's address is no pod
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": source.namespace})
    else:
        in_namespace = source.namespace == namespace
    return in_namespace and selects(peer.get("podSelector", {}), source.labels)


def isolating(policies: list[dict[str, Any]], labels: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        p
        for p in policies
        if p["metadata"]["namespace"] == NAMESPACE
        and "Ingress" in p["spec"]["policyTypes"]
        and selects(p["spec"]["podSelector"], labels)
    ]


def allowed(policies: list[dict[str, Any]], labels: Mapping[str, str], port: int, source: Source) -> bool:
    """Whether a TCP connection from `source` to `port` of a pod labelled `labels` gets through."""
    selecting = isolating(policies, labels)
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(p.get("protocol", "TCP") == "TCP" and p.get("port") == port for p in ports):
                continue
            peers = rule.get("from")
            if not peers or any(admits(peer, source, NAMESPACE) for peer in peers):
                return True
    return False


# the rendered cloud


@dataclass(frozen=True)
class Pod:
    workload: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.workload['kind']}/{self.workload['metadata']['name']}"

    @property
    def template(self) -> dict[str, Any]:
        return dict(self.workload["spec"]["template"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.template["metadata"]["labels"])

    @property
    def service(self) -> str:
        return self.labels["app.kubernetes.io/name"]

    @property
    def component(self) -> str:
        return self.labels["app.kubernetes.io/component"]

    @property
    def host_network(self) -> bool:
        return bool(self.template["spec"].get("hostNetwork"))

    def source(self, node_address: str | None = NODE_IP) -> Source:
        """The pod as a client: itself, or its node's address when it uses the host's network."""
        if self.host_network:
            return Source(self.name, address=node_address)
        return Source(self.name, self.labels)

    def containers(self) -> list[dict[str, Any]]:
        spec = self.template["spec"]
        return [*spec.get("initContainers", []), *spec["containers"]]

    def port(self, name_or_number: int | str) -> int:
        if isinstance(name_or_number, int):
            return name_or_number
        for container in self.containers():
            for port in container.get("ports", []):
                if port.get("name") == name_or_number:
                    return int(port["containerPort"])
        raise AssertionError(f"{self.name} has no port {name_or_number}")


def pods(rendered: Plan) -> list[Pod]:
    return [Pod(o) for o in rendered.objects() if o["kind"] in WORKLOADS]


def network_policies(rendered: Plan) -> list[dict[str, Any]]:
    return [o for o in rendered.objects() if o["kind"] == "NetworkPolicy"]


def server(rendered: Plan, service: str, component: str = "server") -> Pod:
    found = [p for p in pods(rendered) if (p.service, p.component) == (service, component)]
    assert len(found) == 1, (service, component)
    return found[0]


def reaching(rendered: Plan, target: Pod, port: int, *, node_address: str | None = NODE_IP) -> set[str]:
    """The cloud's pods that may open `port` on `target`."""
    policies = network_policies(rendered)
    return {
        p.name
        for p in pods(rendered)
        if not (p.host_network and node_address is None)
        and allowed(policies, target.labels, port, p.source(node_address))
    }


# What each pod is configured to connect to: Service names in its files, command line and environment.

SERVICE_HOST = re.compile(rf"(?:([a-z0-9-]+)\.)?([a-z0-9-]+)\.{NAMESPACE}\.svc(?:\.cluster\.local)?(?::(\d+))?")


def texts(rendered: Plan, pod: Pod) -> Iterator[tuple[dict[str, Any], str]]:
    """Per container, the text it is configured with: its config files (the Secret items it mounts),
    command, arguments and literal environment."""
    secrets = {o["metadata"]["name"]: o.get("stringData", {}) for o in rendered.objects() if o["kind"] == "Secret"}
    volumes = {v["name"]: v for v in pod.template["spec"].get("volumes", [])}
    for container in pod.containers():
        parts = [*container.get("command", []), *container.get("args", [])]
        parts += [str(e["value"]) for e in container.get("env", []) if "value" in e]
        for mount in container.get("volumeMounts", []):
            secret = volumes.get(mount["name"], {}).get("secret")
            if secret is None or secret["secretName"] not in secrets:
                continue  # a user's Secret (Ceph keys): no Service names in it
            data = secrets[secret["secretName"]]
            keys = [i["key"] for i in secret["items"]] if "items" in secret else list(data)
            parts += [data[k] for k in keys if k in data]
        yield container, "\n".join(parts)


@dataclass(frozen=True)
class Need:
    source: Pod
    target: Pod
    port: int
    why: str


def catalog(rendered: Plan) -> str:
    """The internal URLs of keystone's catalog, as the registration Jobs register them: a process that
    knows keystone finds every other API there."""
    jobs = [p for p in pods(rendered) if p.component.startswith("registration")]
    return "\n".join(
        a for p in jobs for c in p.containers() for a in c.get("args", []) if a.startswith("--internal-url=")
    )


def needs(rendered: Plan) -> list[Need]:
    """Every connection a pod of the cloud is configured to open to another workload of the cloud.
    A workload's members among themselves (Galera, Raft, RabbitMQ's cluster) are left to their own test."""
    services = {o["metadata"]["name"]: o for o in rendered.objects() if o["kind"] == "Service"}
    everyone = pods(rendered)
    keystone = f"{server(rendered, 'keystone', 'api').workload['metadata']['name']}.{NAMESPACE}.svc"
    apis = catalog(rendered)
    found: list[Need] = []
    for pod in everyone:
        for container, text in texts(rendered, pod):
            args = container.get("args", [])
            if keystone in text:
                text += "\n" + apis
            for match in SERVICE_HOST.finditer(text):
                name, explicit = match[2], match[3]
                assert name in services, f"{pod.name} names {name!r}, which the cloud has no Service of"
                service = services[name]
                if explicit:
                    ports = [int(explicit)]
                elif any(a.startswith("--host=") and name in a for a in args):  # a stackops Job's flags
                    ports = [int(a.split("=", 1)[1]) for a in args if re.match(r"--(management-)?port=", a)]
                else:
                    ports = [int(p["port"]) for p in service["spec"]["ports"]]
                # the StatefulSet controller gives each pod its name as a label: a member's Service selects one
                selector = {k: v for k, v in service["spec"]["selector"].items() if k != POD_NAME_LABEL}
                targets = [p for p in everyone if selects({"matchLabels": selector}, p.labels)]
                assert targets, f"Service {name} selects no pod"
                for target in targets:
                    if (target.service, target.component) == (pod.service, pod.component):
                        continue
                    for port in ports:
                        by_service = {int(p["port"]): p["targetPort"] for p in service["spec"]["ports"]}
                        # a headless Service's pods are reached on their own ports
                        number = target.port(by_service.get(port, port))
                        found.append(Need(pod, target, number, match[0]))
    return found


# the tests


def test_every_pod_of_the_cloud_is_isolated_and_no_other_tenant_of_the_namespace(example: OpenStackCloud) -> None:
    rendered = plan(example)
    policies = network_policies(rendered)
    assert policies
    for pod in pods(rendered):
        denying = [p for p in isolating(policies, pod.labels) if p["metadata"]["name"].endswith("-default-deny")]
        assert len(denying) == 1, pod.name
        assert "ingress" not in denying[0]["spec"], pod.name  # it admits nothing by itself
        # the same pod of another cloud, or without the cloud's label, is no business of these
        stranger = {**pod.labels, CLOUD_LABEL: "other"}
        assert not isolating(policies, stranger), pod.name
        assert not isolating(policies, {k: v for k, v in pod.labels.items() if k != CLOUD_LABEL}), pod.name
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            # a rule without peers admits everyone (only an API open to Anywhere has one)
            assert rule.get("from") and rule["ports"], policy


@pytest.mark.parametrize("path", [MINIMAL, PRODUCTION], ids=lambda p: p.name)
def test_mariadb_admits_the_services_with_databases_and_their_database_jobs_only(path: Path) -> None:
    example = load(path)
    rendered = plan(example)
    # the services that own a database: the OpenStack services that declare one, and horizon's sessions
    with_databases = {p.service for p in pods(rendered) if p.component == "database"}
    assert {"keystone", "nova", "horizon"} <= with_databases
    mariadb = server(rendered, "mariadb")
    admitted = reaching(rendered, mariadb, 3306)
    expected = {p.name for p in pods(rendered) if p.service in with_databases and not p.host_network}
    database_jobs = {p.name for p in pods(rendered) if p.component == "database"}
    assert database_jobs and database_jobs <= expected
    # with backups (production), MariaDB's own pods: its backup Jobs' (selected by the service's labels)
    own = {mariadb.name} if example.spec.infrastructure.database.backup.enabled else set()
    assert admitted - {p.name for p in pods(rendered) if p.host_network} == expected | own
    # host agents, by their node's address, only where nodeCIDRs are listed (production)
    assert bool(example.spec.network_policies.node_cidrs) == bool(admitted - expected - own)
    if example.spec.infrastructure.database.replicas > 1:
        for port in (4567, 4568, 4444):
            assert reaching(rendered, mariadb, port) == {mariadb.name}, port


@pytest.mark.parametrize("path", [MINIMAL, PRODUCTION], ids=lambda p: p.name)
def test_rabbitmq_admits_the_services_with_messaging_and_its_management_the_user_jobs(path: Path) -> None:
    example = load(path)
    rendered = plan(example)
    services = enabled_services(example.spec)
    messaging = {s.name for s in services if isinstance(s, OpenStackService) and s.messaging}
    # production's opt-in services (barbican, designate, octavia, manila, aodh, ceilometer) have
    # messaging too; barbican listens to keystone's notifications and ceilometer to glance's (and
    # others'), which they send over RabbitMQ
    later = {"barbican", "designate", "octavia", "manila", "aodh", "ceilometer"} if "barbican" in messaging else set()
    notifying = {"keystone", "glance"} if later else set()
    assert messaging == {"nova", "neutron", "cinder", "heat"} | later
    rabbitmq = server(rendered, "rabbitmq")
    on_pods = reaching(rendered, rabbitmq, 5672) - {p.name for p in pods(rendered) if p.host_network}
    talking = messaging | notifying
    assert on_pods == {p.name for p in pods(rendered) if p.service in talking and not p.host_network}
    for pod in pods(rendered):
        if pod.service not in talking and not pod.host_network:  # glance, placement, horizon …
            assert pod.name not in on_pods
    user_jobs = {p.name for p in pods(rendered) if p.component == "messaging"}
    assert user_jobs and reaching(rendered, rabbitmq, 15672, node_address=None) == user_jobs
    members = reaching(rendered, rabbitmq, 25672)
    assert members == ({rabbitmq.name} if example.spec.infrastructure.messaging.replicas > 1 else set())


def test_the_backends_refuse_pods_outside_the_cloud_and_the_apis_admit_them_by_apiaccess() -> None:
    for path in (MINIMAL, PRODUCTION):
        example = load(path)
        rendered = plan(example)
        policies = network_policies(rendered)
        backends = [
            (server(rendered, "mariadb"), 3306),
            (server(rendered, "memcached"), 11211),
            (server(rendered, "rabbitmq"), 5672),
            (server(rendered, "rabbitmq"), 15672),
            (server(rendered, "neutron", "nb-db"), 6641),
            (server(rendered, "neutron", "sb-db"), 6642),
        ]
        strangers = [
            Source("a pod elsewhere", {"app": "curl"}, namespace="elsewhere"),
            Source("another tenant of the namespace", {"app": "curl"}),
            Source("a pod of another cloud", {CLOUD_LABEL: "other", "app.kubernetes.io/name": "nova"}),
            Source("an address off the nodes", address=STRANGER_IP),
        ]
        for target, port in backends:
            for stranger in strangers:
                assert not allowed(policies, target.labels, port, stranger), (path.name, target.name, port, stranger)
        keystone = server(rendered, "keystone", "api")
        elsewhere, controller = strangers[0], Source("ingress", {"app": "nginx"}, namespace="ingress-nginx")
        if path == MINIMAL:  # apiAccess Cluster
            assert allowed(policies, keystone.labels, 5000, elsewhere)
        else:  # Namespaces: the ingress controller's and the operator's
            assert not allowed(policies, keystone.labels, 5000, elsewhere)
            assert allowed(policies, keystone.labels, 5000, controller)
            assert allowed(policies, keystone.labels, 5000, Source("operator", {"x": "y"}, namespace="stackops-system"))
            assert allowed(policies, keystone.labels, 5000, Source("node", address=NODE_IP))
            assert not allowed(policies, keystone.labels, 5000, strangers[3])
            scraper = Source("prometheus", {"app": "prometheus"}, namespace="monitoring")
            assert allowed(policies, server(rendered, "rabbitmq").labels, 15692, scraper)
            assert not allowed(policies, server(rendered, "rabbitmq").labels, 5672, scraper)
            assert allowed(
                policies, server(rendered, "neutron", "sb-db").labels, 6642, Source("chassis", address=NODE_IP)
            )


def test_apis_open_to_anywhere_and_closed_metrics_without_a_monitoring_namespace() -> None:
    rendered = plan(with_policies(MINIMAL, apiAccess={"from": "Anywhere"}))
    policies = network_policies(rendered)
    keystone = server(rendered, "keystone", "api")
    assert allowed(policies, keystone.labels, 5000, Source("the internet", address=STRANGER_IP))
    assert not allowed(policies, server(rendered, "mariadb").labels, 3306, Source("the internet", address=STRANGER_IP))
    rabbitmq = server(rendered, "rabbitmq")
    scraper = Source("prometheus", {"app": "prometheus"}, namespace="monitoring")
    assert not allowed(policies, rabbitmq.labels, 15692, scraper)


@pytest.mark.parametrize("path", [MINIMAL, PRODUCTION], ids=lambda p: p.name)
def test_every_pod_reaches_every_service_its_configuration_names(path: Path) -> None:
    """Host agents count by their node's address where nodeCIDRs lists the nodes; without them only
    agents on their backend's own node reach it, which Kubernetes always admits and this test cannot see."""
    example = load(path)
    rendered = plan(example)
    policies = network_policies(rendered)
    listed = bool(example.spec.network_policies.node_cidrs)
    found = needs(rendered)
    missing = [
        f"{n.source.name} -> {n.target.name}:{n.port} ({n.why})"
        for n in found
        if (listed or not n.source.host_network) and not allowed(policies, n.target.labels, n.port, n.source.source())
    ]
    assert not missing, "\n".join(missing)
    # the check sees what matters: every backend and the OVN databases are among the needs
    reached = {(n.target.service, n.target.component) for n in found}
    expected = {("mariadb", "server"), ("rabbitmq", "server"), ("memcached", "server"), ("keystone", "api")}
    assert {*expected, ("neutron", "nb-db"), ("neutron", "sb-db"), ("nova", "metadata")} <= reached
    if listed:
        by_agents = {(n.target.service, n.target.component) for n in found if n.source.host_network}
        assert {("neutron", "sb-db"), ("rabbitmq", "server"), ("nova", "metadata"), ("placement", "api")} <= by_agents


def test_a_missing_flow_is_caught() -> None:
    """The reachability check is not vacuous: without RabbitMQ's AMQP rule the services that talk
    over it cannot reach it."""
    rendered = plan(load(PRODUCTION))
    policies = network_policies(rendered)
    broken = [p for p in policies if p["metadata"]["name"] != "prod-rabbitmq-server"]
    rabbitmq = server(rendered, "rabbitmq")
    cut = [
        n
        for n in needs(rendered)
        if n.target == rabbitmq and not allowed(broken, rabbitmq.labels, n.port, n.source.source())
    ]
    expected = {"nova", "neutron", "cinder", "heat", "barbican", "designate", "octavia", "manila", "keystone"}
    expected |= {"aodh", "ceilometer", "glance"}
    assert {n.source.service for n in cut} == expected


@pytest.mark.parametrize("path", [MINIMAL, PRODUCTION], ids=lambda p: p.name)
def test_each_service_uses_exactly_the_backends_its_configuration_names(path: Path) -> None:
    """`uses`, which the backends' policies come from, grants no service a backend it is not
    configured to reach, and misses none."""
    example = load(path)
    rendered = plan(example)
    named: dict[str, set[str]] = {}
    for need in needs(rendered):
        if need.target.service in BACKENDS:
            named.setdefault(need.source.service, set()).add(need.target.service)
    for service in enabled_services(example.spec):
        if service.name in BACKENDS:
            continue
        assert named.get(service.name, set()) == set(service.uses(example.spec)) & set(BACKENDS), service.name


def test_ovn_databases_admit_neutron_octavia_and_their_raft_members() -> None:
    rendered = plan(load(PRODUCTION))
    neutron = {p.name for p in pods(rendered) if p.service == "neutron"}
    # octavia's OVN provider (in its API) and driver agent write and follow load balancers there;
    # NetworkPolicies admit a using service's pods, whichever component
    octavia = {p.name for p in pods(rendered) if p.service == "octavia"}
    assert {p.component for p in pods(rendered) if p.service == "octavia"} >= {"api", "housekeeping", "db-sync"}
    # chassis and metadata agents from their nodes: an address tells no host-network pod from another
    on_nodes = {p.name for p in pods(rendered) if p.host_network}
    for component, port, raft in (("nb-db", 6641, 6643), ("sb-db", 6642, 6644)):
        database = server(rendered, "neutron", component)
        assert reaching(rendered, database, port) == neutron | octavia | on_nodes
        assert reaching(rendered, database, port, node_address=None) == (neutron | octavia) - on_nodes
        assert reaching(rendered, database, raft) == {database.name}
        assert not reaching(rendered, database, 6640)


def test_switched_off_no_network_policy_and_everything_else_unchanged(example: OpenStackCloud) -> None:
    document = example.model_dump(by_alias=True, exclude_unset=True)
    document["spec"]["networkPolicies"] = {"enabled": False}
    off = plan(parse_cloud(document))
    on = plan(example)
    assert not network_policies(off) and not off.flows
    assert off.objects() == [o for o in on.objects() if o["kind"] != "NetworkPolicy"]
    assert [s.name for s in off.steps] == [s.name for s in on.steps if not s.name.endswith("-network-policy")]


def test_policies_come_first_in_each_service_and_validate_against_the_kubernetes_1_34_schema() -> None:
    variants = [
        load(MINIMAL),
        load(PRODUCTION),
        with_policies(MINIMAL, apiAccess={"from": "Anywhere"}, nodeCIDRs=["fd00:10::/64", "10.0.0.0/8"]),
        cloud({"infrastructure": {"database": {"external": {"host": "db.example", "secretRef": {"name": "db"}}}}}),
    ]
    for variant in variants:
        rendered = plan(variant)
        first: dict[str, str] = {}
        for step in rendered.steps:
            first.setdefault(step.service, step.name)
        for service, first_step in first.items():
            if any(o["kind"] in WORKLOADS for s in rendered.steps if s.service == service for o in s.objects):
                assert first_step == f"{service}-network-policy", service
        for policy in network_policies(rendered):
            kubernetes_validate.validate(policy, "1.34", strict=True)
    external = plan(variants[-1])
    assert not [p for p in network_policies(external) if p["metadata"]["labels"]["app.kubernetes.io/name"] == "mariadb"]


def test_node_cidrs_and_namespaces_are_checked() -> None:
    ok = with_policies(MINIMAL, nodeCIDRs=["10.0.0.5/24"])
    assert ok.spec.network_policies.node_cidrs == ["10.0.0.0/24"]  # canonical, as ipBlocks take it
    for bad, message in (
        ({"nodeCIDRs": ["10.0.0.5"]}, "is not a CIDR"),
        ({"nodeCIDRs": ["10.0.0.0/33"]}, "is not a CIDR"),
        ({"apiAccess": {"from": "Namespaces"}}, "at least one is needed"),
        ({"apiAccess": {"from": "Cluster", "namespaces": ["a"]}}, "only with from: Namespaces"),
        ({"monitoringNamespace": "Monitoring"}, "pattern"),
    ):
        with pytest.raises(ValueError, match=message):
            with_policies(MINIMAL, **bad)


def test_the_flows_in_docs_security_md_are_the_examples() -> None:
    from stackops.cli import flows_markers

    text = (ROOT / "docs" / "security.md").read_text()
    for path in (MINIMAL, PRODUCTION):
        start, end = flows_markers(f"examples/{path.name}")
        committed = text.split(start, 1)[1].split(end, 1)[0]
        assert committed == "\n" + flows_markdown(plan(load(path)).flows), "docs/security.md is stale: run `make crds`"


def test_the_operator_applies_a_services_policies_before_its_objects_and_prunes_them_when_off() -> None:
    from tests.support.passes import SMALL, CloudPasses

    c = CloudPasses({"release": "2026.1", **SMALL})
    c.converge()
    kinds_by_service: dict[str, list[str]] = {}
    for kind, name in c.kube.applied:
        labels = c.kube.objects[(kind, NAMESPACE, name)]["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/name", "stackops") != "stackops":  # not the credentials Secret
            kinds_by_service.setdefault(labels["app.kubernetes.io/name"], []).append(kind)
    for service, kinds in kinds_by_service.items():
        policies = kinds.count("NetworkPolicy")
        assert policies >= 1 and set(kinds[:policies]) == {"NetworkPolicy"}, (service, kinds)
        assert "NetworkPolicy" not in kinds[policies:], service
    applied = [name for kind, name in c.kube.applied if kind == "NetworkPolicy"]
    assert applied.index("demo-mariadb-server") < applied.index("demo-mariadb-default-deny")  # allowing first

    c.kube.forget_writes()
    c.spec["networkPolicies"] = {"enabled": False}
    assert c.reconcile().current is None
    assert c.kube.applied == [] and {kind for kind, _ in c.kube.deleted} == {"NetworkPolicy"}
    assert len(c.kube.deleted) == len(applied)
    assert not [key for key in c.kube.objects if key[0] == "NetworkPolicy"]

    c.kube.forget_writes()
    del c.spec["networkPolicies"]
    c.reconcile()
    assert sorted(name for kind, name in c.kube.applied) == sorted(applied) and c.kube.deleted == []


def _node(name: str, address: str) -> dict[str, Any]:
    addresses = [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": address}]
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {"addresses": addresses}}


def _node_blocks(policy: Mapping[str, Any]) -> set[str]:
    return {
        peer["ipBlock"]["cidr"]
        for rule in policy["spec"].get("ingress", [])
        for peer in rule["from"]
        if "ipBlock" in peer
    }


def test_the_operator_admits_host_agents_by_the_addresses_of_the_clusters_nodes() -> None:
    """Without nodeCIDRs the operator reads the Node objects on every pass: a node that joins is
    admitted where host agents are (RabbitMQ, which nova-compute uses), by its address alone."""
    from tests.support.passes import CloudPasses

    c = CloudPasses({"release": "2026.1", "services": {"cinder": {"enabled": False}}})
    c.kube.objects[("Node", "", "node-a")] = _node("node-a", "10.1.0.11")
    c.converge()
    rabbitmq = c.kube.objects[("NetworkPolicy", NAMESPACE, "demo-rabbitmq-server")]
    keystone = c.kube.objects[("NetworkPolicy", NAMESPACE, "demo-keystone-api")]
    assert _node_blocks(rabbitmq) == {"10.1.0.11/32"}
    c.kube.objects[("Node", "", "node-b")] = _node("node-b", "10.1.0.12")
    c.reconcile()
    rabbitmq = c.kube.objects[("NetworkPolicy", NAMESPACE, "demo-rabbitmq-server")]
    assert _node_blocks(rabbitmq) == {"10.1.0.11/32", "10.1.0.12/32"}
    assert _node_blocks(keystone) == {"10.1.0.11/32"}  # APIs admit the nodes too (apiAccess)

    c.spec["networkPolicies"] = {"nodeCIDRs": ["10.1.0.0/24"]}  # given: the nodes are not looked at
    c.reconcile()
    rabbitmq = c.kube.objects[("NetworkPolicy", NAMESPACE, "demo-rabbitmq-server")]
    assert _node_blocks(rabbitmq) == {"10.1.0.0/24"}
