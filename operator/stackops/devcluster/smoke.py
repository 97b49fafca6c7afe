"""Use a deployed cloud as a person would, through its Services, with openstacksdk: each check does one
thing a user does on a new cloud and says what it saw. Checks of services the catalog lacks are
skipped, and say so. Run where the cloud's names resolve (`ip netns exec stackops-node` on the host
of a real node; any pod):

    python -m stackops.devcluster.smoke --cloud demo     # OS_CLIENT_CONFIG_FILE names the clouds.yaml

Exit status 0 when every check that ran passed, 1 otherwise; one line per check.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any

PREFIX = "stackops-smoke"


@dataclass
class Result:
    name: str
    ok: bool | None  # None: skipped
    detail: str

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        return f"{mark} {self.name}: {self.detail}"


class Skip(Exception):
    pass


def _catalog(conn: Any) -> dict[str, list[str]]:
    """Service type → public URLs, from the token's catalog."""
    found: dict[str, list[str]] = {}
    for entry in conn.session.auth.get_access(conn.session).service_catalog.catalog:
        urls = [e["url"] for e in entry.get("endpoints", []) if e.get("interface") == "public"]
        found.setdefault(entry["type"], []).extend(urls)
    return found


def _need(catalog: dict[str, list[str]], *types: str) -> None:
    missing = [t for t in types if not any(k == t or k.startswith(t) for k in catalog)]
    if missing:
        raise Skip(f"no {', '.join(missing)} in the catalog")


def check_token(conn: Any, catalog: dict[str, list[str]]) -> str:
    token = conn.authorize()
    return f"token issued ({len(token)} characters); catalog: {', '.join(sorted(catalog))}"


def check_catalog(conn: Any, catalog: dict[str, list[str]], expected: list[str]) -> str:
    missing = [t for t in expected if not any(k == t or k.startswith(t) for k in catalog)]
    if missing:
        raise AssertionError(f"the catalog lacks {', '.join(missing)} (has {', '.join(sorted(catalog))})")
    return f"every enabled service is in the catalog ({len(expected)})"


def check_image(conn: Any, catalog: dict[str, list[str]]) -> str:
    _need(catalog, "image")
    data = secrets.token_bytes(3 * 1024 * 1024 + 17)
    image = conn.image.create_image(
        name=f"{PREFIX}-image", data=data, disk_format="raw", container_format="bare", wait=True
    )
    try:
        back = conn.image.download_image(image).content
        if hashlib.sha256(back).digest() != hashlib.sha256(data).digest():
            raise AssertionError(f"downloaded {len(back)} bytes differ from the {len(data)} uploaded")
        return f"uploaded and downloaded {len(data)} bytes, identical (sha256)"
    finally:
        conn.image.delete_image(image)


def check_metadefs(conn: Any, catalog: dict[str, list[str]]) -> str:
    """The metadata definitions glance ships are loaded (Horizon's metadata editors read them)."""
    _need(catalog, "image")
    namespaces = list(conn.image.metadef_namespaces())
    resource_types = list(conn.image.metadef_resource_types())
    if not namespaces or not resource_types:
        raise AssertionError(f"{len(namespaces)} metadefs namespaces, {len(resource_types)} resource types")
    return f"{len(namespaces)} metadefs namespaces, {len(resource_types)} resource types"


def check_flavor(conn: Any, catalog: dict[str, list[str]]) -> str:
    _need(catalog, "compute")
    flavor = conn.compute.create_flavor(name=f"{PREFIX}-flavor", ram=64, vcpus=1, disk=1)
    try:
        listed = [f.name for f in conn.compute.flavors()]
        if flavor.name not in listed:
            raise AssertionError(f"flavor {flavor.name} not listed")
        return f"flavor {flavor.name} created and listed"
    finally:
        conn.compute.delete_flavor(flavor)


def check_network(conn: Any, catalog: dict[str, list[str]]) -> str:
    _need(catalog, "network")
    network = conn.network.create_network(name=f"{PREFIX}-net")
    try:
        subnet = conn.network.create_subnet(
            network_id=network.id, name=f"{PREFIX}-subnet", ip_version=4, cidr="192.168.77.0/24"
        )
        return f"network {network.id} with subnet {subnet.cidr}"
    finally:
        if os.environ.get("STACKOPS_SMOKE_KEEP_NETWORK") != "1":
            conn.network.delete_network(network)


def check_volume_type(conn: Any, catalog: dict[str, list[str]]) -> str:
    _need(catalog, "block-storage")
    volume_type = conn.block_storage.create_type(name=f"{PREFIX}-type")
    try:
        return f"volume type {volume_type.name} created"
    finally:
        conn.block_storage.delete_type(volume_type)


# A stack of resources that need no other service: a random string and a resource that uses it.
STACK = {
    "heat_template_version": "2018-08-31",
    "resources": {
        "secret": {"type": "OS::Heat::RandomString", "properties": {"length": 24}},
        "wait": {"type": "OS::Heat::TestResource", "properties": {"value": {"get_resource": "secret"}}},
    },
    "outputs": {"secret": {"value": {"get_attr": ["secret", "value"]}}},
}


def check_stack(conn: Any, catalog: dict[str, list[str]]) -> str:
    _need(catalog, "orchestration")
    stack = conn.orchestration.create_stack(name=f"{PREFIX}-stack", template=STACK)
    try:
        deadline = time.monotonic() + 300
        while True:
            stack = conn.orchestration.get_stack(stack.id)
            if stack.status != "CREATE_IN_PROGRESS" or time.monotonic() > deadline:
                break
            time.sleep(2)
        if stack.status != "CREATE_COMPLETE":
            raise AssertionError(f"stack {stack.name}: {stack.status} ({stack.status_reason})")
        return f"stack {stack.name} CREATE_COMPLETE"
    finally:
        conn.orchestration.delete_stack(stack)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def check_horizon(url: str, password: str, cacert: str | None = None) -> str:
    """The login page answers, the admin logs in (Django's form, CSRF token included) and then sees
    a page only a logged-in user sees (the identity panel: every cloud has keystone); `cacert`: the
    CA its certificate is verified with (clouds.yaml's), else the public CAs."""
    jar = CookieJar()
    verified = urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cacert))
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect(), verified)
    base = url.rstrip("/")
    login = base + "/auth/login/"
    page = opener.open(login, timeout=60).read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not match:
        raise AssertionError(f"{login}: no login form")
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": match.group(1), "username": "admin", "password": password, "region": "default"}
    ).encode()
    try:
        opener.open(urllib.request.Request(login, data=form, headers={"Referer": login}), timeout=60)
        raise AssertionError("the login form came back: the credentials were refused")
    except urllib.error.HTTPError as answer:
        if answer.code != 302 or "/auth/login" in (answer.headers.get("Location") or ""):
            raise AssertionError(f"login answered {answer.code} {answer.headers.get('Location')}") from None
    status = opener.open(base + "/identity/", timeout=60).status
    return f"login page answers; admin logged in and sees the identity panel (HTTP {status})"


def run(cloud: str, expected: list[str], horizon_url: str | None) -> list[Result]:
    import openstack

    conn = openstack.connect(cloud=cloud)
    results: list[Result] = []

    def attempt(name: str, check: Callable[[], str]) -> None:
        try:
            results.append(Result(name, True, check()))
        except Skip as skipped:
            results.append(Result(name, None, str(skipped)))
        except Exception as error:  # any failure is the check's result, reported with the others
            results.append(Result(name, False, f"{type(error).__name__}: {error}"))

    catalog: dict[str, list[str]] = {}

    def token() -> str:
        catalog.update(_catalog(conn))
        return check_token(conn, catalog)

    attempt("token", token)
    attempt("catalog", lambda: check_catalog(conn, catalog, expected))
    for name, check in (
        ("image", check_image),
        ("metadefs", check_metadefs),
        ("flavor", check_flavor),
        ("network", check_network),
        ("volume type", check_volume_type),
        ("stack", check_stack),
    ):
        attempt(name, lambda check=check: check(conn, catalog))  # type: ignore[misc]
    if horizon_url:
        password, cacert = conn.config.config["auth"]["password"], conn.config.config.get("cacert")
        attempt("horizon", lambda: check_horizon(horizon_url, password, cacert))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud", required=True, help="the entry of clouds.yaml to use")
    parser.add_argument("--expect", default="", help="comma-separated catalog types that must be present")
    parser.add_argument("--horizon", help="the dashboard's URL, to log in to it")
    args = parser.parse_args(argv)
    results = run(args.cloud, [t for t in args.expect.split(",") if t], args.horizon)
    for result in results:
        print(result.line(), flush=True)
    return 1 if any(r.ok is False for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
