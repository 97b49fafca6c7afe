"""What every OpenStack API service is made of: a WSGI app under Apache in a Kolla image, Jobs run
from the same image, and an API Deployment with its Service, disruption budget and public endpoint.

Service modules call these with what is particular to them; the shape is the same for all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stackops.api.models import WorkloadSpec
from stackops.render.kolla import DISTRO_PYTHON, ConfigFile, KollaCommand, Permission
from stackops.services.base import CloudContext, ConfigSecret, Service, Step
from stackops.services.endpoints import api_service_name, public_exposure

KOLLA_VENV = "/var/lib/kolla/venv"
APACHE = "/usr/sbin/apache2 -DFOREGROUND"


def command_key(service: str, component: str) -> str:
    """Key of a component's config.json in its service's config Secret."""
    return f"{service}-{component}.json"


def wsgi_file(service: str) -> str:
    return f"wsgi-{service}.conf"


def apache_command(
    service: str, user: str, *files: ConfigFile, permissions: tuple[Permission, ...] = ()
) -> KollaCommand:
    """An API served by Apache mod_wsgi: the service's files plus its wsgi_config() in conf-enabled."""
    site = ConfigFile(wsgi_file(service), f"/etc/apache2/conf-enabled/{wsgi_file(service)}", user)
    return KollaCommand(APACHE, (*files, site), permissions)


@dataclass(frozen=True)
class Kolla:
    """What every container of one service shares: image, config Secret, commands, the image's uid."""

    service: str
    image: str
    config: ConfigSecret
    commands: dict[str, KollaCommand]
    uid: int

    def volume(self, component: str) -> dict[str, Any]:
        """The config volume of one component: its config.json and the files it lists."""
        key = command_key(self.service, component)
        return self.config.volume("config", key, self.commands[component])


def kolla(
    ctx: CloudContext,
    service: Service,
    image: str,
    files: dict[str, str],
    commands: dict[str, KollaCommand],
    uid: int,
) -> Kolla:
    """The service's config Secret (its files and one config.json per component) and what its
    containers share. `image` is a Kolla image name, subject to the service's overrides."""
    files = files | {command_key(service.name, c): command.to_json() for c, command in commands.items()}
    config = ctx.config_secret(service.name, files)
    return Kolla(service.name, ctx.image(service.workload(ctx.spec), image), config, commands, uid)


def wsgi_config(ctx: CloudContext, process: str, port: int, user: str, module_file: str, processes: int = 2) -> str:
    """Apache mod_wsgi config serving `module_file` (a path inside site-packages) on `port`."""
    return ctx.render_text(
        "common/wsgi.conf.j2",
        process=process,
        port=port,
        user=user,
        processes=processes,
        wsgi_script=site_packages(ctx, module_file),
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
) -> Step:
    """A Kolla Job running `commands[component]` with the service's config."""
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
            env=list(env),
            resources=service.resources(ctx.spec, component),
        ),
    )


def api_step(
    ctx: CloudContext,
    service: Service,
    kolla: Kolla,
    *,
    workload: WorkloadSpec,
    port: int,
    probe_path: str,
    extra_volumes: Sequence[dict[str, Any]] = (),
    extra_mounts: Sequence[dict[str, Any]] = (),
) -> Step:
    """The API Deployment, Service, PodDisruptionBudget and (with a public domain) Ingress/HTTPRoute."""
    name = api_service_name(ctx, service.name)
    objects = ctx.render(
        "common/api.yaml.j2",
        name=name,
        service=service.name,
        spec=workload,
        image=kolla.image,
        config=kolla.config,
        config_volume=kolla.volume("api"),
        port=port,
        probe_path=probe_path,
        uid=kolla.uid,
        resources=service.resources(ctx.spec, "api"),
        extra_volumes=list(extra_volumes),
        extra_mounts=list(extra_mounts),
    )
    return Step(f"{service.name}-api", service.name, objects + public_exposure(ctx, service.name, port))
