"""Where a service is reached: its catalog URLs and how its public endpoint is exposed."""

from __future__ import annotations

from typing import Any

from stackops.api.models import EndpointOverrides
from stackops.services.base import CloudContext


def public_host(ctx: CloudContext, service: str) -> str | None:
    domain = ctx.spec.endpoints.public_domain
    return f"{service}.{domain}" if domain else None


def api_service_name(ctx: CloudContext, service: str, component: str = "api") -> str:
    """The Kubernetes Service in front of a service's API: what the catalog's internal URL names."""
    return ctx.object_name(service, component)


def api_scheme(ctx: CloudContext) -> str:
    """What the cloud's APIs speak: https with internal TLS (services/api.py: every API serves TLS
    only then; its probes, Services and catalog URLs say so)."""
    return "https" if ctx.internal_tls else "http"


def service_urls(
    ctx: CloudContext,
    overrides: EndpointOverrides,
    service: str,
    port: int,
    component: str = "api",
    public_name: str | None = None,
) -> dict[str, str]:
    """internal and public URLs of a component (the API by default, public host `<service>.<domain>`,
    or `<public_name>.<domain>`); without a public domain, public is the internal URL. Internal URLs
    are https with internal TLS (services/api.py: every API serves TLS only then)."""
    internal = f"{api_scheme(ctx)}://{ctx.service_host(api_service_name(ctx, service, component))}:{port}"
    host = public_host(ctx, public_name or service)
    scheme = "https" if ctx.spec.endpoints.tls.secret_name else "http"
    public = f"{scheme}://{host}" if host else internal
    return {"internal": overrides.internal or internal, "public": overrides.public or public}


def public_exposure(
    ctx: CloudContext, service: str, port: int, component: str = "api", public_name: str | None = None
) -> list[dict[str, Any]]:
    """An Ingress or HTTPRoute for a component's public endpoint, or nothing without a public domain;
    with internal TLS the gateway is told the backend speaks TLS (an Ingress by annotation and the
    Service's appProtocol, an HTTPRoute by a BackendTLSPolicy with the cloud's CA)."""
    host = public_host(ctx, public_name or service)
    if host is None:
        return []
    template = "common/ingress.yaml.j2" if ctx.spec.endpoints.exposure == "Ingress" else "common/httproute.yaml.j2"
    return ctx.render(
        template,
        service=service,
        service_name=api_service_name(ctx, service, component),
        component=component,
        host=host,
        port=port,
        endpoints=ctx.spec.endpoints,
        backend_tls=ctx.internal_tls,
        ca_certificate=ctx.ca_certificate if ctx.internal_tls else None,
    )
