"""A cloud's admin credentials as an OpenStack clouds.yaml, the file `openstack --os-cloud NAME` reads."""

from __future__ import annotations

from typing import Any

from stackops.api.models import GROUP, PLURAL, VERSION
from stackops.certificates import CA_CERT_KEY
from stackops.render.naming import selector_labels
from stackops.services.identity import (
    ADMIN_PASSWORD_KEY,
    ADMIN_PROJECT,
    ADMIN_USER,
    BOOTSTRAP,
    admin_passwords_in_use,
)


class CloudNotReachable(Exception):
    """The cloud or its credentials cannot be read, or keystone is not deployed yet."""


def clouds_yaml(name: str, auth_url: str, password: str, region: str, cacert: str | None = None) -> dict[str, Any]:
    """One entry, `name`, for the cloud's admin in the admin project, through the public interface;
    `cacert`: the file of the CA its endpoints' certificates are verified with (none: the public CAs)."""
    document = {
        "clouds": {
            name: {
                "auth": {
                    "auth_url": auth_url,
                    "username": ADMIN_USER,
                    "password": password,
                    "project_name": ADMIN_PROJECT,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": region,
                "interface": "public",
                "identity_api_version": 3,
            }
        }
    }
    if cacert:
        document["clouds"][name]["cacert"] = cacert
    return document


def read(
    api: Any, namespace: str, name: str, entry: str | None = None, ca_file: str | None = None
) -> tuple[dict[str, Any], str | None]:
    """clouds.yaml for the cloud `namespace/name`: its identity endpoint from status, the admin
    password keystone takes from its credentials Secret (during a rotation of it, the one its
    bootstrap Jobs set: identity.admin_passwords_in_use), its region from the spec; and the cloud's
    CA (PEM) when its public endpoints are its internal ones, which serve its certificates (internal
    TLS, no public domain): the caller writes it to `ca_file`, which clouds.yaml names as cacert."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from stackops.api.validation import parse_cloud
    from stackops.kube.credentials_secret import credentials_of, credentials_secret_name

    where = f"{namespace}/{name}"
    try:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        secret = client.CoreV1Api(api).read_namespaced_secret(credentials_secret_name(name), namespace)
    except ApiException as error:
        raise CloudNotReachable(f"{where}: cannot read the cloud or its credentials: {error.reason}") from None
    auth_url = (obj.get("status") or {}).get("endpoints", {}).get("identity")
    credentials = credentials_of(api.sanitize_for_serialization(secret))
    if not auth_url or ADMIN_PASSWORD_KEY not in credentials:
        raise CloudNotReachable(f"{where}: keystone is not deployed yet (no identity endpoint or admin password)")
    bootstrap: list[dict[str, Any]] = []
    if credentials.live_key(ADMIN_PASSWORD_KEY) != ADMIN_PASSWORD_KEY:  # a rotation of it is under way
        selector = ",".join(f"{k}={v}" for k, v in selector_labels(name, "keystone", BOOTSTRAP).items())
        jobs = client.BatchV1Api(api).list_namespaced_job(namespace, label_selector=selector)
        bootstrap = [api.sanitize_for_serialization(job) for job in jobs.items]
    spec = parse_cloud({**obj, "status": None}).spec
    own_ca = spec.internal_tls.enabled and not spec.endpoints.public_domain and CA_CERT_KEY in credentials
    ca = credentials[CA_CERT_KEY] if own_ca else None
    password = admin_passwords_in_use(credentials, bootstrap)[0]
    return clouds_yaml(entry or name, auth_url, password, spec.region, ca_file if ca else None), ca
