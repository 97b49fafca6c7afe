"""What a service module declares, and the context it renders in.

A service module says what the service *is*: its components and their default resources, the images
it runs, the credentials it needs, what it depends on, and the steps that bring it up. The machinery
(naming, labels, images, config Secrets, hashing) lives in CloudContext so service modules stay short.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from stackops import __version__, certificates
from stackops.api.models import OpenStackCloudSpec, WorkloadSpec
from stackops.credentials import Credentials, CredentialSpec, KeyRotation
from stackops.render import kolla, naming
from stackops.render.hashing import CONFIG_HASH_ANNOTATION, content_hash
from stackops.render.templates import render_objects, render_text
from stackops.services.health_checks import HealthCheck
from stackops.services.images import DebianImage, OpenStackImages
from stackops.services.upgrades import ServiceUpgrade

OPERATOR_IMAGE_ENV = "STACKOPS_IMAGE"
CREDENTIALS_SECRET_SUFFIX = "credentials"
STACKOPS_UID = 65532  # the operator image's stackops user, which its Jobs run as
# Where a stackops Job finds the Secret values it was given, one file each, named by a <NAME>_FILE
# variable (stackops.cli reads either form): a value in a file is not in the container's environment,
# which `kubectl describe`, crash reports and every child process would see.
SECRET_FILES_DIR = "/run/secrets/stackops"
SECRET_FILES_VOLUME = "secrets"
# The cloud's CA certificate, which clients of its internal TLS verify servers with, in a config
# Secret and (by that name) next to the config files of the containers that verify
CA_FILE_KEY = "ca.crt"


@dataclass(frozen=True)
class SecretFiles:
    """A container's Secret values as files: the <NAME>_FILE variables, the mount and its volume."""

    env: list[dict[str, str]]
    mount: dict[str, Any]
    volume: dict[str, Any]


def default_operator_image() -> str:
    """The image Jobs that run stackops code use: the operator's own image."""
    return os.environ.get(OPERATOR_IMAGE_ENV) or f"quay.io/stackops/stackops:{__version__}"


class RenderError(ValueError):
    """The spec asks for something that cannot be rendered; `field` names where (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Resources:
    """Default requests of a component: every pod asks for something, so none is BestEffort.

    The defaults are a small cloud's: CPU near what the component uses at rest (OpenStack's services
    idle at a few millicores and burst into unrequested CPU, as no CPU limit is set), so the whole
    default cloud, hypervisor agents included, schedules on one 2-core node. A cloud with load sets
    `resources` per component (examples/production.yaml); memory requests are sized for real use."""

    cpu: str
    memory: str
    memory_limit: str | None = None

    def to_dict(self) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {"requests": {"cpu": self.cpu, "memory": self.memory}}
        if self.memory_limit:
            result["limits"] = {"memory": self.memory_limit}
        return result


class Clients(StrEnum):
    """Who may connect to a Listener: each becomes the peers of one ingress rule of the cloud's
    NetworkPolicies (services/network_policies.py)."""

    # where spec.networkPolicies.apiAccess says, the cloud's own pods, and its nodes
    API = "api"
    # the pods of every service that uses the listener's service (Service.uses), and the nodes when
    # one of those runs host agents
    USERS = "users"
    # the pods of the listener's own service, and the nodes when it runs host agents
    SERVICE = "service"
    # the pods of the listener's own component: the members of a cluster
    MEMBERS = "members"
    # the pods of one component (`Listener.jobs`) of every service: the Jobs stackops runs for each
    JOBS = "jobs"
    # the namespace spec.networkPolicies.monitoringNamespace names
    MONITORING = "monitoring"


@dataclass(frozen=True)
class Listener:
    """TCP (and UDP) ports the pods of one of the service's components serve, and who may connect to them.
    The cloud's NetworkPolicies allow exactly these connections into its pods and refuse the rest."""

    component: str
    ports: tuple[int, ...]
    clients: Clients
    jobs: str | None = None  # with Clients.JOBS: the component name of those Jobs
    udp: bool = False  # the ports over UDP too (DNS)
    # with Clients.USERS: the name its users' `uses` give (a part of a service others reach on
    # their own, such as neutron's OVN databases); by default the listener's service's
    used_as: str | None = None

    def __post_init__(self) -> None:
        if (self.clients is Clients.JOBS) != (self.jobs is not None):
            raise ValueError("a listener names Jobs (`jobs`) exactly when its clients are Clients.JOBS")
        if self.used_as is not None and self.clients is not Clients.USERS:
            raise ValueError("a listener names what its users use (`used_as`) only when its clients are Clients.USERS")


@dataclass(frozen=True)
class Step:
    """Objects applied together; the next step waits until these are ready. `listeners`: what the
    pods of these objects serve, and to whom (see Listener)."""

    name: str
    service: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    listeners: tuple[Listener, ...] = ()
    after_all: bool = False  # waits for every step before it, of any service (a restore)


@dataclass(frozen=True)
class RenderOptions:
    operator_image: str = field(default_factory=default_operator_image)
    # The InternalIPs of the cluster's nodes, sorted: where host agents' connections come from
    # (services/network_policies.py). The operator fills them in; `stackops render` knows none.
    node_addresses: tuple[str, ...] = ()


# A served certificate's files (ServedCertificate), each by the credentials Secret's key it holds
SERVED_CERT, SERVED_KEY = "server.crt", "server.key"


def served_keys(request: certificates.CertificateRequest) -> dict[str, str]:
    """A served certificate's files, by the credentials Secret's keys they hold."""
    return {SERVED_CERT: request.cert_key, SERVED_KEY: request.private_key, CA_FILE_KEY: certificates.CA_CERT_KEY}


def served_paths(directory: str) -> dict[str, str]:
    """Where a server's container has its served certificate's files in `directory`, by file name."""
    return {name: f"{directory}/{name}" for name in (SERVED_CERT, SERVED_KEY, CA_FILE_KEY)}


@dataclass(frozen=True)
class ServedCertificate:
    """A long-running server's certificate, key and the cloud's CA as files the kubelet keeps
    current: a volume projected from the credentials Secret at `directory`, neither copied by
    kolla_start nor in the config hash. A renewed certificate (months before it expires) so
    reaches the running server without restarting it; the server loads it again once its probe
    sees the files changed (reload_when_renewed), or on its own (OVN's ovsdb-server)."""

    directory: str
    volume: dict[str, Any]
    # where the probe keeps what it last had the server load: in the container, gone with it
    loaded_marker: ClassVar[str] = "/tmp/stackops-tls-loaded"

    @property
    def mount(self) -> dict[str, Any]:
        return {"name": self.volume["name"], "mountPath": self.directory, "readOnly": True}

    def probe(self, reload: str, check: str) -> list[str]:
        """An exec probe's command: reload_when_renewed's lines, then `check`, which the probe judges."""
        return ["/bin/sh", "-c", f"{self.reload_when_renewed(reload)}\n{check}"]

    def reload_when_renewed(self, reload: str) -> str:
        """Shell lines for a probe (sh, or bash with errexit): run `reload` when the files differ
        from what the server last loaded (once after each start too: the kubelet may have renewed
        them between the server's start and its first probe). They fail nothing: a reload that
        fails is retried at the next probe, and the server keeps serving the certificate it has; a
        checksum read while the kubelet swaps the files costs one more reload at the next probe."""
        files = " ".join(served_paths(self.directory).values())
        return "\n".join(
            [
                f"renewed=$(cat {files} 2>/dev/null | cksum) || true",
                f'if [ "$renewed" != "$(cat {self.loaded_marker} 2>/dev/null)" ]; then',
                f'    if {reload}; then {{ echo "$renewed" > {self.loaded_marker}; }} 2>/dev/null || true;'
                ' else echo "the renewed certificate was not loaded" >&2; fi',
                "fi",
            ]
        )


@dataclass(frozen=True)
class ConfigSecret:
    """A service's rendered config files in one Secret, and the hash pods carry to roll on change."""

    name: str
    obj: dict[str, Any]
    hash: str

    def volume(self, volume_name: str, command_key: str, command: kolla.KollaCommand) -> dict[str, Any]:
        return kolla.config_volume(volume_name, self.name, command_key, command)


class CloudContext:
    """Everything a service needs to render itself for one cloud."""

    def __init__(
        self,
        name: str,
        namespace: str,
        spec: OpenStackCloudSpec,
        credentials: Credentials,
        options: RenderOptions | None = None,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.spec = spec
        self.credentials = credentials
        self.options = options or RenderOptions()

    # names and labels
    def object_name(self, *parts: str) -> str:
        return naming.object_name(self.name, *parts)

    def labels(self, service: str, component: str) -> dict[str, str]:
        return naming.common_labels(self.name, service, component)

    def selector(self, service: str, component: str) -> dict[str, str]:
        return naming.selector_labels(self.name, service, component)

    def metadata(self, name: str, service: str, component: str) -> dict[str, Any]:
        return {"name": name, "namespace": self.namespace, "labels": self.labels(service, component)}

    @property
    def credentials_secret(self) -> str:
        return self.object_name(CREDENTIALS_SECRET_SUFFIX)

    def secret_env(self, env_name: str, key: str, secret: str | None = None) -> dict[str, Any]:
        """An env var read from a Secret (the credentials Secret by default): values never enter the spec."""
        return {
            "name": env_name,
            "valueFrom": {"secretKeyRef": {"name": secret or self.credentials_secret, "key": key}},
        }

    def secret_files(
        self,
        secrets: Mapping[str, tuple[str | None, str]],
        optional: Mapping[str, tuple[str | None, str]] | None = None,
    ) -> SecretFiles:
        """Secret values as files for a container: `secrets` is variable -> (Secret, or None for the
        credentials Secret; key); each file is SECRET_FILES_DIR/<variable>, named by <variable>_FILE.
        `optional`: files there only while their key is (a rotation's new value: the kubelet adds
        and removes them as the Secret changes, with no restart)."""
        files = sorted({**secrets, **(optional or {})}.items())
        by_secret: dict[tuple[str, bool], list[dict[str, str]]] = {}
        for name, (secret, key) in files:
            source = (secret or self.credentials_secret, name in (optional or {}))
            by_secret.setdefault(source, []).append({"key": key, "path": name})
        sources = [
            {"secret": {"name": secret, "items": items, **({"optional": True} if is_optional else {})}}
            for (secret, is_optional), items in sorted(by_secret.items())
        ]
        return SecretFiles(
            env=[{"name": f"{name}_FILE", "value": f"{SECRET_FILES_DIR}/{name}"} for name, _ in files],
            mount={"name": SECRET_FILES_VOLUME, "mountPath": SECRET_FILES_DIR, "readOnly": True},
            # 0440 and the pod's fsGroup: readable by its user, no one else
            volume={"name": SECRET_FILES_VOLUME, "projected": {"defaultMode": 0o440, "sources": sources}},
        )

    def stackops_job(
        self,
        service: str,
        component: str,
        job: str,
        args: Sequence[str],
        resources: dict[str, Any],
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, tuple[str | None, str]] | None = None,
    ) -> list[dict[str, Any]]:
        """The Job running `stackops job <job> <args>` in the operator's image for `service`: plain
        `env`, and `secrets` (as for secret_files) as files."""
        files = self.secret_files(secrets or {})
        return self.render(
            "common/stackops-job.yaml.j2",
            service=service,
            component=component,
            job=job,
            args=list(args),
            env=[{"name": name, "value": value} for name, value in sorted((env or {}).items())] + files.env,
            files=files,
            uid=STACKOPS_UID,
            resources=resources,
        )

    @property
    def internal_tls(self) -> bool:
        """Whether the backends the operator runs speak TLS with certificates of the cloud's CA."""
        return self.spec.internal_tls.enabled

    @property
    def ca_certificate(self) -> str:
        """The cloud's CA certificate (PEM), which clients of its internal TLS verify servers with."""
        return self.credentials[certificates.CA_CERT_KEY]

    def served_certificate(
        self, requests: Sequence[certificates.CertificateRequest], directory: str
    ) -> ServedCertificate | None:
        """A server's certificate from its one certificate request (none: no TLS), its key and the
        CA, in `directory` of its container (ServedCertificate); 0440: its user's by the pod's
        fsGroup (root's where the image runs as root)."""
        if not requests:
            return None
        (request,) = requests
        items = [{"key": key, "path": path} for path, key in served_keys(request).items()]
        source = {"secret": {"name": self.credentials_secret, "items": items}}
        return ServedCertificate(directory, {"name": "tls", "projected": {"defaultMode": 0o440, "sources": [source]}})

    def served_files(self, requests: Sequence[certificates.CertificateRequest]) -> dict[str, str]:
        """What a ServedCertificate's directory holds (file name: content)."""
        if not requests:
            return {}
        (request,) = requests
        return {path: self.credentials[key] for path, key in served_keys(request).items()}

    def service_host(self, service_name: str) -> str:
        return f"{service_name}.{self.namespace}.svc"

    def service_fqdn(self, service_name: str) -> str:
        """A Service's fully qualified name, for clients that ignore resolv.conf's search domains."""
        return f"{self.service_host(service_name)}.{self.spec.endpoints.cluster_domain}"

    # pods
    def image(self, workload: WorkloadSpec, kolla_name: str) -> str:
        return kolla.image_ref(self.spec.images, self.spec.release, kolla_name, workload.images)

    @property
    def operator_image(self) -> str:
        return self.options.operator_image

    @staticmethod
    def restricted(uid: int = 0) -> dict[str, Any]:
        """The securityContext of a container that needs no privilege: it gains none (no setuid
        binary, no capability), and with `uid` it runs as that non-root user. The root filesystem
        stays writable: kolla_start writes the config files into place on every start, as the Kolla
        contract says (docs/security.md)."""
        security: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        if uid:
            security |= {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid}
        return security

    def pod_defaults(
        self, *, fs_group: int | None = None, run_as: int | None = None, api_access: bool = False
    ) -> dict[str, Any]:
        """Pod spec fields every pod of the cloud shares: the container runtime's default seccomp
        profile, no ServiceAccount token unless the pod talks to the Kubernetes API (`api_access`:
        RabbitMQ's peer discovery), `fs_group` owning its volumes, `run_as` a fixed non-root user."""
        security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
        if run_as is not None:
            security |= {"runAsNonRoot": True, "runAsUser": run_as, "runAsGroup": run_as}
        if fs_group is not None:
            security["fsGroup"] = fs_group
        defaults: dict[str, Any] = {
            "nodeSelector": dict(self.spec.nodes.control_plane.match_labels),
            "enableServiceLinks": False,
            "automountServiceAccountToken": api_access,
            "securityContext": security,
        }
        if self.spec.images.pull_secrets:
            defaults["imagePullSecrets"] = [{"name": n} for n in self.spec.images.pull_secrets]
        return defaults

    def anti_affinity(self, service: str, component: str, mode: str = "Preferred") -> dict[str, Any]:
        """The pod affinity that keeps a workload's replicas on different nodes: `Preferred` (the
        scheduler spreads them as far as the nodes allow) or `Required` (never two on one node)."""
        term = {
            "topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": self.selector(service, component)},
        }
        if mode == "Required":
            return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
        preferred = [{"weight": 100, "podAffinityTerm": term}]
        return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}

    def disruption_budget(self, name: str, service: str, component: str) -> dict[str, Any]:
        """A PodDisruptionBudget letting voluntary evictions (a node drain) take one replica at a time:
        a Galera, RabbitMQ or OVN Raft cluster of three keeps its majority. The replicated backends
        have one only with more than one replica, as a single replica may always go."""
        return {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": self.metadata(name, service, component),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": self.selector(service, component)}},
        }

    # config
    def config_secret(
        self, service: str, files: dict[str, str], part: str = "", first_boot: Mapping[str, str] | None = None
    ) -> ConfigSecret:
        """The Secret `<cloud>-<service>[-<part>]-config`: `part` tells apart a service's Secrets that
        differ by where they run (e.g. one per compute group). `first_boot`: files beside `files`
        that the server reads only when it boots on empty data (RabbitMQ's first administrator),
        left out of the hash: a change to them rolls no pod."""
        name = self.object_name(service, *([part] if part else []), "config")
        data = {key: files[key] for key in sorted(files)}
        obj = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self.metadata(name, service, "config"),
            "type": "Opaque",
            "stringData": dict(sorted({**data, **(first_boot or {})}.items())),
        }
        return ConfigSecret(name=name, obj=obj, hash=content_hash(data))

    def config_annotations(self, *hashes: str) -> dict[str, str]:
        return {CONFIG_HASH_ANNOTATION: content_hash(list(hashes))}

    # templates
    def render(self, template: str, **values: Any) -> list[dict[str, Any]]:
        return render_objects(template, ctx=self, **values)

    def render_text(self, template: str, **values: Any) -> str:
        return render_text(template, ctx=self, **values)


class Service(ABC):
    """One deployable part of a cloud."""

    name: ClassVar[str]
    spec_path: ClassVar[str]  # where its settings live in the spec, e.g. "services.keystone"
    depends_on: ClassVar[tuple[str, ...]] = ()
    # Services that upgrade to a new release before this one although it does not depend on them:
    # its place in OpenStack's upgrade order (stackops.upgrade.plan.upgrade_order).
    upgrade_after: ClassVar[tuple[str, ...]] = ()
    # The images it runs (services/images.py): its package's, and infrastructure images of its own.
    openstack_images: ClassVar[OpenStackImages | None] = None
    debian_images: ClassVar[tuple[DebianImage, ...]] = ()
    components: ClassVar[dict[str, Resources]] = {}
    # The components serving HTTP behind a Service of their own (services/api.py, api_step): with
    # internal TLS they serve HTTPS with one certificate of the service naming each of them.
    apis: ClassVar[tuple[str, ...]] = ()
    # The oslo.config files in the service's config Secret, by key, and the option namespaces each
    # draws from (the `oslo.config.opts` entry points of the packages that define them).
    config_files: ClassVar[dict[str, tuple[str, ...]]] = {}

    @property
    def images(self) -> tuple[str, ...]:
        """The Kolla names of every image the service runs: what `spec...images` may override."""
        own = self.openstack_images.names if self.openstack_images else ()
        return (*own, *(name for image in self.debian_images for name in image.names))

    def workload(self, spec: OpenStackCloudSpec) -> WorkloadSpec:
        node: Any = spec
        for part in self.spec_path.split("."):
            node = getattr(node, part)
        assert isinstance(node, WorkloadSpec)
        return node

    def enabled(self, spec: OpenStackCloudSpec) -> bool:
        return bool(getattr(self.workload(spec), "enabled", True))

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        return []

    def uses(self, spec: OpenStackCloudSpec) -> frozenset[str]:
        """The services whose pods this service's pods connect to: the listeners of theirs that
        admit their users (Clients.USERS) admit this service's pods. What it depends on, unless it
        says more."""
        return frozenset(self.depends_on)

    def certificates(self, ctx: CloudContext) -> list[certificates.CertificateRequest]:
        """The certificates of the cloud's CA it serves TLS with, or its clients present where the
        server asks for one (docs/security.md)."""
        return []

    # A long-running server that loads its renewed certificate while it runs: where its containers
    # have it (ServedCertificate), from its one certificate request
    served_tls_dir: ClassVar[str | None] = None

    def served_certificate(self, ctx: CloudContext) -> ServedCertificate | None:
        if self.served_tls_dir is None:
            return None
        return ctx.served_certificate(self.certificates(ctx), self.served_tls_dir)

    def tls_files(self, ctx: CloudContext) -> dict[str, str]:
        """What its served certificate's directory holds (file name: content), for those who run the
        server outside a pod (the real tests)."""
        return ctx.served_files(self.certificates(ctx))

    def key_rotations(self, spec: OpenStackCloudSpec) -> list[KeyRotation]:
        """Keys the operator rotates on a schedule (in the credentials Secret)."""
        return []

    def migrated_keys(self, spec: OpenStackCloudSpec) -> list[str]:
        """Key repositories (by prefix in the credentials Secret) that a credential rotation rotates,
        and a Job of the service then migrates what they encrypt to the new primary key."""
        return []

    def resources(self, spec: OpenStackCloudSpec, component: str, default: Resources | None = None) -> dict[str, Any]:
        """Default requests of the component (or `default`, when they depend on the spec), with the
        user's override on top."""
        result: dict[str, Any] = (default or self.components[component]).to_dict()
        override = self.workload(spec).resources.get(component)
        if override is not None:
            if override.requests:
                result["requests"] = {**result["requests"], **override.requests}
            if override.limits:
                result["limits"] = {**result.get("limits", {}), **override.limits}
        return result

    def problems(self, spec: OpenStackCloudSpec) -> list[RenderError]:
        """Spec mistakes the schema cannot see, e.g. resources for a component that does not exist."""
        workload = self.workload(spec)
        found = [
            RenderError(
                f"spec.{self.spec_path}.resources.{key}",
                f"unknown component (known: {', '.join(self.components)})",
            )
            for key in workload.resources
            if key not in self.components
        ]
        found += [
            RenderError(f"spec.{self.spec_path}.images.{key}", f"unknown image (known: {', '.join(self.images)})")
            for key in workload.images
            if key not in self.images
        ]
        return found

    def endpoints(self, ctx: CloudContext) -> dict[str, str]:
        """URLs users reach the service at, shown in the cloud's status."""
        return {}

    def config_sections_like(self, spec: OpenStackCloudSpec) -> dict[str, str]:
        """Sections of the config files that the spec names (e.g. one per cinder backend), each with the
        option group it takes its options from: what oslo-config-validator checks such a section against."""
        return {}

    def health_checks(self, ctx: CloudContext) -> list[HealthCheck]:
        """OpenStack-level checks of the running service (stackops.services.health_checks), beyond what
        every service gets: its pods and Jobs looked at, and its catalog endpoints answering. The
        operator runs them periodically once the service is deployed, e.g. nova's compute services up."""
        return []

    def upgrade(self, ctx: CloudContext) -> ServiceUpgrade | None:
        """The commands that move the service's database to the release `ctx` renders
        (stackops.services.upgrades); None when an upgrade only rolls its pods."""
        return None

    @abstractmethod
    def steps(self, ctx: CloudContext) -> list[Step]:
        """The service's objects, in the order they must become ready."""

    def closing_steps(self, ctx: CloudContext) -> list[Step]:
        """Steps after every service's steps (the database's restore), each with `after_all`."""
        return []
