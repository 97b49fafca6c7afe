"""Nothing left behind: a disabled service's catalog entries and keystone users are removed by
keystone's deregistration Job, and only what stackops registered (the pure part; the Job against a
real keystone is tests/real/test_catalog_cleanup.py)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from stackops.cli import parser
from stackops.openstack.registration import (
    MANAGED_USER,
    CatalogService,
    Registration,
    ServiceUser,
    deregister,
    register,
)
from stackops.plan import plan
from tests.conftest import cloud
from tests.support.rendered import find

# The services off by default (barbican, designate, octavia, swift) turned on, so that heat is the one disabled.
SWIFT_ON = {"enabled": True, "nodes": [{"node": "a", "devices": [{"name": d} for d in ("d1", "d2", "d3")]}]}
OPT_IN_ON = {
    "barbican": {"enabled": True},
    "designate": {"enabled": True},
    "octavia": {"enabled": True},
    "swift": SWIFT_ON,
    "manila": {"enabled": True},
    "gnocchi": {"enabled": True},
    "aodh": {"enabled": True},
    "ceilometer": {"enabled": True},
}
HEAT_OFF = {"services": {**OPT_IN_ON, "heat": {"enabled": False}}}


def cleanup_args(spec: dict[str, Any]) -> list[str]:
    job = find(plan(cloud(spec)), "Job", "keystone", "deregistration")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["stackops", "job", "deregister-services"]
    return list(container["args"])


def test_a_cloud_with_every_service_enabled_has_no_deregistration_job() -> None:
    names = [step.name for step in plan(cloud({"services": OPT_IN_ON})).steps]
    assert "keystone-deregistration" not in names
    # a service off by default is named too: it may have been on before (the Job removes nothing then)
    assert "keystone-deregistration" in [step.name for step in plan(cloud({})).steps]


def test_a_disabled_service_has_its_catalog_entries_and_users_named_in_keystones_job() -> None:
    args = cleanup_args(HEAT_OFF)
    parsed = parser().parse_args(["job", "deregister-services", *args])
    assert parsed.region == "RegionOne"
    assert parsed.service == [
        ["orchestration", "heat", "Heat orchestration service"],
        ["cloudformation", "heat-cfn", "Heat CloudFormation-compatible API"],
    ]
    assert parsed.user == [["default", "heat"], ["heat", "heat_domain_admin"]]


def test_the_job_runs_once_keystone_serves_and_is_a_new_job_when_the_disabled_set_changes() -> None:
    steps = [step.name for step in plan(cloud(HEAT_OFF)).steps if step.service == "keystone"]
    assert steps[-2:] == ["keystone-api", "keystone-deregistration"]
    heat_off = find(plan(cloud(HEAT_OFF)), "Job", "keystone", "deregistration")["metadata"]["name"]
    both_off = {"services": {**OPT_IN_ON, "heat": {"enabled": False}, "cinder": {"enabled": False}}}
    assert find(plan(cloud(both_off)), "Job", "keystone", "deregistration")["metadata"]["name"] != heat_off
    # no password of a service in its environment: it removes, it sets nothing
    env = find(plan(cloud(HEAT_OFF)), "Job", "keystone", "deregistration")["spec"]["template"]["spec"]
    assert [v["name"] for v in env["containers"][0]["env"]] == [
        "OS_AUTH_URL",
        "OS_PROJECT_NAME",
        "OS_USERNAME",
        "OS_CACERT_FILE",  # the cloud's CA: keystone serves its certificate
        "OS_PASSWORD_FILE",
    ]


# An in-memory keystone, with the calls registration.py makes.
_ids = itertools.count(1)


@dataclass
class Thing:
    name: str = ""
    type: str = ""
    description: str | None = None
    url: str = ""
    interface: str = ""
    service_id: str = ""
    region_id: str = ""
    domain_id: str = "default"
    options: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(next(_ids)))


class FakeIdentity:
    def __init__(self) -> None:
        self.services_: list[Thing] = []
        self.endpoints_: list[Thing] = []
        self.users: list[Thing] = [Thing("admin")]
        self.projects: list[Thing] = []
        self.roles: list[Thing] = []
        self.domains = [Thing("Default", id="default"), Thing("heat")]

    @staticmethod
    def _find(things: list[Thing], name: str, domain_id: str | None = None) -> Thing | None:
        return next((t for t in things if name in (t.name, t.id) and domain_id in (None, t.domain_id)), None)

    def find_project(self, name: str, ignore_missing: bool, domain_id: str) -> Thing | None:
        return self._find(self.projects, name, domain_id)

    def create_project(self, name: str, domain_id: str) -> Thing:
        self.projects.append(Thing(name, domain_id=domain_id))
        return self.projects[-1]

    def find_user(self, name: str, domain_id: str, ignore_missing: bool) -> Thing | None:
        return self._find(self.users, name, domain_id)

    def create_user(self, name: str, domain_id: str, **attrs: Any) -> Thing:
        self.users.append(Thing(name, domain_id=domain_id, description=attrs.get("description")))
        return self.users[-1]

    def update_user(self, user: Thing, **attrs: Any) -> Thing:
        user.description = attrs.get("description", user.description)
        user.options = attrs.get("options", user.options)
        return user

    def get_user(self, user_id: str) -> Thing:
        return next(u for u in self.users if u.id == user_id)

    def delete_user(self, user: Thing, ignore_missing: bool) -> None:
        self.users.remove(user)

    def find_role(self, name: str, ignore_missing: bool) -> Thing | None:
        return self._find(self.roles, name)

    def create_role(self, name: str) -> Thing:
        self.roles.append(Thing(name))
        return self.roles[-1]

    def assign_project_role_to_user(self, project: Thing, user: Thing, role: Thing) -> None:
        pass

    def find_domain(self, name: str, ignore_missing: bool) -> Thing | None:
        return self._find(self.domains, name)

    def services(self) -> list[Thing]:
        return list(self.services_)

    def create_service(self, name: str, type: str, description: str, is_enabled: bool) -> Thing:
        self.services_.append(Thing(name, type, description))
        return self.services_[-1]

    def delete_service(self, service: Thing, ignore_missing: bool) -> None:
        self.services_.remove(service)

    def endpoints(self, service_id: str, **match: str) -> list[Thing]:
        return [
            e
            for e in self.endpoints_
            if e.service_id == service_id and all(getattr(e, k) == v for k, v in match.items())
        ]

    def create_endpoint(self, service_id: str, interface: str, url: str, region_id: str, is_enabled: bool) -> Thing:
        self.endpoints_.append(Thing(url=url, interface=interface, service_id=service_id, region_id=region_id))
        return self.endpoints_[-1]

    def delete_endpoint(self, endpoint: Thing, ignore_missing: bool) -> None:
        self.endpoints_.remove(endpoint)


@dataclass
class FakeConnection:
    identity: FakeIdentity = field(default_factory=FakeIdentity)

    @property
    def current_user_id(self) -> str:
        return self.identity.users[0].id


HEAT = Registration("RegionOne", "orchestration", "heat", "Heat orchestration service",
                    {"public": "http://heat/v1", "internal": "http://heat.svc/v1"}, "heat")  # fmt: skip
HEAT_ENTRY = CatalogService("orchestration", "heat", "Heat orchestration service")


def test_deregistration_removes_what_registration_made_and_nothing_else() -> None:
    conn = FakeConnection()
    register(conn, HEAT, "secret")
    identity = conn.identity
    heat = identity.find_user("heat", "default", True)
    assert heat is not None and heat.description == MANAGED_USER
    # an orchestration service someone registered by hand, and a user of theirs named like a service
    identity.create_service("heat", "orchestration", "our own heat", True)
    identity.create_user("cinder", "default", description="the storage team")
    removed = deregister(conn, [HEAT_ENTRY], [ServiceUser("heat"), ServiceUser("cinder"), ServiceUser("nova")])
    assert removed == [
        "internal endpoint http://heat.svc/v1 removed",
        "public endpoint http://heat/v1 removed",
        "service heat (orchestration) removed",
        "user heat in domain Default removed",
        "user cinder in domain Default left: not made by stackops",
    ]
    assert [(s.name, s.description) for s in identity.services_] == [("heat", "our own heat")]
    assert identity.endpoints_ == []
    assert [u.name for u in identity.users] == ["admin", "cinder"]
    # declarative: run again, it finds nothing more to remove
    assert deregister(conn, [HEAT_ENTRY], [ServiceUser("heat")]) == []


def test_a_user_made_before_the_mark_gets_it_at_its_next_registration() -> None:
    conn = FakeConnection()
    conn.identity.create_user("heat", "default")  # as registration made it before users were marked
    register(conn, HEAT, "secret")
    heat = conn.identity.find_user("heat", "default", True)
    assert heat is not None and heat.description == MANAGED_USER


def test_a_missing_domain_is_nothing_to_remove() -> None:
    conn = FakeConnection()
    assert deregister(conn, [], [ServiceUser("heat_domain_admin", "no-such-domain")]) == []


PLACEMENT = Registration("RegionOne", "placement", "placement", "Placement API",
                         {"public": "http://placement", "internal": "http://placement.svc"}, "placement")  # fmt: skip


def test_a_rotation_registers_the_other_account_then_removes_the_old_one() -> None:
    conn = FakeConnection()
    register(conn, PLACEMENT, "old")
    # granting: the other account of the pair, beside the one in use
    register(conn, replace(PLACEMENT, user="placement-b"), "new")
    assert [u.name for u in conn.identity.users] == ["admin", "placement", "placement-b"]
    # revoking: the old account goes, once no config uses it
    changed = register(conn, replace(PLACEMENT, user="placement-b", retired_user="placement"), "new")
    assert "user placement in domain default removed" in changed
    assert [u.name for u in conn.identity.users] == ["admin", "placement-b"]
    # a disabled service loses whichever of its pair exists
    entry = CatalogService("placement", "placement", "Placement API")
    assert "user placement-b in domain Default removed" in deregister(conn, [entry], [ServiceUser("placement")])
    assert [u.name for u in conn.identity.users] == ["admin"]
