"""What every OpenStack API service is made of: a WSGI app under Apache in a Kolla image, Jobs run
from the same image, and an API Deployment with its Service, disruption budget and public endpoint.

Service modules call these with what is particular to them; the shape is the same for all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stackops.api.models import WorkloadSpec
from stackops.render.kolla import DISTRO_PYTHON, KollaCommand
from stackops.services.base import CloudContext, ConfigSecret, Service, Step
from stackops.services.endpoints import public_exposure

KOLLA_VENV = "/var/lib/kolla/venv"


@dataclass(frozen=True)
class Kolla:
    """What every container of one service shares: image, config Secret, commands, the image's uid."""

    image: str
    config: ConfigSecret
    commands: dict[str, KollaCommand]
    uid: int


def wsgi_config(ctx: CloudContext, process: str, port: int, user: str, module_file: str, processes: int = 2) -> str:
    """Apache mod_wsgi config serving `module_file` (a path inside site-packages) on `port`."""
    python = DISTRO_PYTHON.get(ctx.spec.images.distro, "3.12")
    return ctx.render_text(
        "common/wsgi.conf.j2",
        process=process,
        port=port,
        user=user,
        processes=processes,
        wsgi_script=f"{KOLLA_VENV}/lib/python{python}/site-packages/{module_file}",
    )


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
            commands=kolla.commands,
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
    name = ctx.object_name(service.name, "api")
    objects = ctx.render(
        "common/api.yaml.j2",
        name=name,
        service=service.name,
        spec=workload,
        image=kolla.image,
        config=kolla.config,
        commands=kolla.commands,
        port=port,
        probe_path=probe_path,
        uid=kolla.uid,
        resources=service.resources(ctx.spec, "api"),
        extra_volumes=list(extra_volumes),
        extra_mounts=list(extra_mounts),
    )
    return Step(f"{service.name}-api", service.name, objects + public_exposure(ctx, service.name, name, port))
