"""What every OpenStack API service is made of: a WSGI app under uWSGI in a Kolla image, Jobs run
from the same image, and an API Deployment with its Service, disruption budget and public endpoint.

Service modules call these with what is particular to them; the shape is the same for all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stackops import certificates
from stackops.api.models import WorkloadSpec
from stackops.render.kolla import CONFIG_STRATEGY_ENV, DISTRO_PYTHON, ConfigFile, KollaCommand, Permission, config_mount
from stackops.services import policy
from stackops.services.base import CA_FILE_KEY, Clients, CloudContext, ConfigSecret, Listener, Service, Step
from stackops.services.endpoints import api_scheme, api_service_name, public_exposure

KOLLA_VENV = "/var/lib/kolla/venv"
# An API's server certificate (of the cloud's CA) and its key: their keys in the service's config
# Secret and their names beside its main config in the containers that serve it (ServerTls)
API_CERT_KEY = "api.crt"
API_KEY_KEY = "api.key"


def certificate(ctx: CloudContext, service: Service) -> certificates.CertificateRequest | None:
    """The one server certificate of a service's APIs, naming the Service in front of each (its
    `apis`), when the cloud's APIs speak TLS (internal TLS); None otherwise."""
    if not ctx.internal_tls or not service.apis:
        return None
    domain = ctx.spec.endpoints.cluster_domain
    names = [
        name
        for component in service.apis
        for name in certificates.service_names(api_service_name(ctx, service.name, component), ctx.namespace, domain)
    ]
    return certificates.CertificateRequest(f"{service.name}-api", tuple(names))


@dataclass(frozen=True)
class ServerTls:
    """Where an API's containers have its server certificate and key: in `directory`, a directory
    kolla_start may write to as the service's user (beside its main config)."""

    directory: str

    @property
    def cert(self) -> str:
        return f"{self.directory}/{API_CERT_KEY}"

    @property
    def key(self) -> str:
        return f"{self.directory}/{API_KEY_KEY}"

    def files(self, owner: str) -> tuple[ConfigFile, ConfigFile]:
        """The two files kolla_start puts in place, the key readable by `owner` alone."""
        return ConfigFile(API_CERT_KEY, self.cert, owner, "0644"), ConfigFile(API_KEY_KEY, self.key, owner, "0600")


def server_tls(ctx: CloudContext, directory: str) -> ServerTls | None:
    """Where an API's certificate and key are (`directory`), when the cloud's APIs speak TLS."""
    return ServerTls(directory) if ctx.internal_tls else None


def command_key(service: str, component: str) -> str:
    """Key of a component's config.json in its service's config Secret."""
    return f"{service}-{component}.json"


@dataclass(frozen=True)
class Kolla:
    """What every container of one service shares: image, config Secret, commands, the image's uid."""

    service: str
    image: str
    config: ConfigSecret
    commands: dict[str, KollaCommand]
    uid: int
    # the image acts as root through sudo and rootwrap (services/images.py: OpenStackImage.root_helper)
    root_helper: bool = False

    def security(self, privileged: bool = False) -> dict[str, Any] | None:
        """The securityContext of a container of this image: none may gain privileges (no setuid
        binary, no capability) unless it acts as root through sudo (root helpers) or is privileged
        (what mounts or plugs); those of Kolla's non-root users run as them, those of images that
        run as root (OVN's databases and northd) as root without any capability."""
        if privileged:
            return {"privileged": True}
        if self.root_helper:
            return None
        return CloudContext.restricted(self.uid)

    def volume(self, component: str, name: str = "config") -> dict[str, Any]:
        """The config volume of one component: its config.json and the files it lists (`name`: for
        a pod with several Kolla containers, a volume name of each one's own)."""
        key = command_key(self.service, component)
        return self.config.volume(name, key, self.commands[component])


def kolla(
    ctx: CloudContext,
    service: Service,
    image: str,
    files: dict[str, str],
    commands: dict[str, KollaCommand],
    uid: int,
    part: str = "",
    root_helper: bool = False,
) -> Kolla:
    """The service's config Secret (its files and one config.json per component) and what its
    containers share. `image` is a Kolla image name, subject to the service's overrides; `part`
    names a second Secret of the service (see CloudContext.config_secret)."""
    if not part:  # policy is enforced by the control plane: host agents' Secrets never roll for it
        files, commands = policy.with_policy_file(ctx, service, files, commands)
    listed = {f.source for command in commands.values() for f in command.files}
    if CA_FILE_KEY in listed:
        files = files | {CA_FILE_KEY: ctx.ca_certificate}  # the cloud's CA, which command_files() list
    # the API's certificate, which ServerTls.files() list
    if API_KEY_KEY in listed and (request := certificate(ctx, service)) is not None:
        files = files | {
            API_CERT_KEY: ctx.credentials[request.cert_key],
            API_KEY_KEY: ctx.credentials[request.private_key],
        }
    files = files | {command_key(service.name, c): command.to_json() for c, command in commands.items()}
    config = ctx.config_secret(service.name, files, part)
    return Kolla(service.name, ctx.image(service.workload(ctx.spec), image), config, commands, uid, root_helper)


def uwsgi_file(service: str, component: str = "api") -> str:
    return f"{service}-{component}-uwsgi.ini"


def uwsgi_command(
    service: str,
    user: str,
    config_dir: str,
    *files: ConfigFile,
    component: str = "api",
    permissions: tuple[Permission, ...] = (),
    tls: ServerTls | None = None,
) -> KollaCommand:
    """An API served by uWSGI, as Kolla images run every API (from 2026.1 on they ship no Apache):
    the service's files plus its uwsgi_config() next to them (and its certificate, with `tls`)."""
    ini = ConfigFile(uwsgi_file(service, component), f"{config_dir}/{uwsgi_file(service, component)}", user)
    own = tls.files(user) if tls else ()
    return KollaCommand(f"uwsgi --ini {ini.dest}", (*files, ini, *own), permissions)


def wsgi_file(release: str, module_file: str, before: str, since: str = "2025.2") -> str:
    """`module_file`, the WSGI module a service's package ships since the release `since`, or what
    uwsgi_config() serves before it (the script that release's package had instead)."""
    return before if release < since else module_file


def uwsgi_config(
    ctx: CloudContext,
    process: str,
    port: int,
    module_file: str,
    processes: int = 2,
    static: str | None = None,
    user: str | None = None,
    socket_timeout: int = 30,
    tls: ServerTls | None = None,
) -> str:
    """uWSGI config serving `module_file` (a path inside site-packages, or an absolute one: a script
    of the virtualenv's bin/ where a release's package has no module) on `port`, over TLS only with
    `tls`; `static` (inside site-packages too) is served at /static by uWSGI itself; `user`: the
    workers drop to this user (for images that start as root); `socket_timeout`: longer for APIs
    that stream large bodies."""
    return ctx.render_text(
        "common/uwsgi.ini.j2",
        process=process,
        port=port,
        tls=tls,
        processes=processes,
        wsgi_script=module_file if module_file.startswith("/") else site_packages(ctx, module_file),
        static=site_packages(ctx, static) if static else None,
        user=user,
        socket_timeout=socket_timeout,
    )


def site_packages(ctx: CloudContext, path: str) -> str:
    """Where `path` (relative to site-packages) is inside the Kolla image of the cloud's distro."""
    python = DISTRO_PYTHON.get(ctx.spec.images.distro, "3.12")
    return f"{KOLLA_VENV}/lib/python{python}/site-packages/{path}"


def job_step(
    ctx: CloudContext,
    service: Service,
    component: str,
    kolla: Kolla,
    env: Sequence[dict[str, Any]] = (),
    extra_volumes: Sequence[dict[str, Any]] = (),
    extra_mounts: Sequence[dict[str, Any]] = (),
) -> Step:
    """A Kolla Job running `commands[component]` with the service's config (and further volumes)."""
    return Step(
        f"{service.name}-{component}",
        service.name,
        ctx.render(
            "common/kolla-job.yaml.j2",
            service=service.name,
            component=component,
            image=kolla.image,
            config=kolla.config,
            config_volume=kolla.volume(component),
            uid=kolla.uid,
            security=kolla.security(),
            env=list(env),
            resources=service.resources(ctx.spec, component),
            extra_volumes=list(extra_volumes),
            extra_mounts=list(extra_mounts),
        ),
    )


def api_step(
    ctx: CloudContext,
    service: Service,
    kolla: Kolla,
    *,
    workload: WorkloadSpec,
    port: int,
    probe_path: str | None,
    component: str = "api",
    public_name: str | None = None,
    extra_volumes: Sequence[dict[str, Any]] = (),
    extra_mounts: Sequence[dict[str, Any]] = (),
    env: Sequence[dict[str, Any]] = (),
    sidecars: Sequence[Sidecar] = (),
) -> Step:
    """The API Deployment, Service, PodDisruptionBudget and (with a public domain) Ingress/HTTPRoute;
    its port is open to API clients (Clients.API).

    `component` serves an HTTP endpoint other than the service's API (e.g. a console proxy), made
    public as `<public_name>.<domain>`; `probe_path` None probes the port only; `sidecars` run
    beside the API in its pod (see sidecar())."""
    name = api_service_name(ctx, service.name, component)
    objects = ctx.render(
        "common/api.yaml.j2",
        name=name,
        service=service.name,
        component=component,
        spec=workload,
        image=kolla.image,
        config=kolla.config,
        config_volume=kolla.volume(component),
        port=port,
        probe_path=probe_path,
        scheme=api_scheme(ctx),
        uid=kolla.uid,
        security=kolla.security(),
        resources=service.resources(ctx.spec, component),
        extra_volumes=[*extra_volumes, *(s.config_volume for s in sidecars)],
        extra_mounts=list(extra_mounts),
        env=list(env),
        sidecars=[s.container for s in sidecars],
    )
    exposure = public_exposure(ctx, service.name, port, component, public_name)
    listener = Listener(component, (port,), Clients.API)
    return Step(f"{service.name}-{component}", service.name, objects + exposure, (listener,))


@dataclass(frozen=True)
class Sidecar:
    """A second Kolla container of a pod, with its own config.json (its config volume)."""

    container: dict[str, Any]
    config_volume: dict[str, Any]


def sidecar(
    ctx: CloudContext,
    service: Service,
    component: str,
    kolla: Kolla,
    *,
    mounts: Sequence[dict[str, Any]] = (),
    env: Sequence[dict[str, Any]] = (),
) -> Sidecar:
    """`commands[component]` beside a pod's main container, from the same image and config Secret."""
    volume = kolla.volume(component, f"config-{component}")
    container = {
        "name": f"{service.name}-{component}",
        "image": kolla.image,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "imagePullPolicy": ctx.spec.images.pull_policy,
        "command": ["kolla_start"],
        "env": [CONFIG_STRATEGY_ENV, *env],
        "resources": service.resources(ctx.spec, component),
        "volumeMounts": [config_mount(volume["name"]), *mounts],
    }
    security = kolla.security()
    if security:
        container["securityContext"] = security
    return Sidecar(container, volume)


def exec_probes(command: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Readiness and liveness from one check command (Kolla images ship `healthcheck_*` scripts)."""
    check = {"exec": {"command": list(command)}, "timeoutSeconds": 10}
    return {
        "readinessProbe": check | {"periodSeconds": 15},
        "livenessProbe": check | {"initialDelaySeconds": 60, "periodSeconds": 30, "failureThreshold": 5},
    }


def worker_step(
    ctx: CloudContext,
    service: Service,
    component: str,
    kolla: Kolla,
    *,
    replicas: int,
    probes: dict[str, dict[str, Any]] | None = None,
    ports: Sequence[dict[str, Any]] = (),
    env: Sequence[dict[str, Any]] = (),
    extra_volumes: Sequence[dict[str, Any]] = (),
    extra_mounts: Sequence[dict[str, Any]] = (),
    privileged: bool = False,
    single: bool = False,
) -> Step:
    """A Deployment running `commands[component]`: a process with no HTTP API of its own.

    `privileged` for processes that mount file systems (NFS); `single` for a process of which two
    must never run at once (the old pod is gone before its replacement starts)."""
    return Step(
        f"{service.name}-{component}",
        service.name,
        ctx.render(
            "common/worker.yaml.j2",
            name=ctx.object_name(service.name, component),
            service=service.name,
            component=component,
            replicas=replicas,
            image=kolla.image,
            config=kolla.config,
            config_volume=kolla.volume(component),
            uid=kolla.uid,
            security=kolla.security(privileged),
            probes=probes or {},
            ports=list(ports),
            env=list(env),
            resources=service.resources(ctx.spec, component),
            extra_volumes=list(extra_volumes),
            extra_mounts=list(extra_mounts),
            single=single,
        ),
    )
