"""The OpenStack service contract (services/openstack.py): what a module declares is all a new
service needs for its credentials, its first steps, its registration and upgrade Jobs' components
and its upgrade; and every OpenStack service of stackops keeps to it."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from stackops.api.models import ServiceSpec
from stackops.credentials import Credentials
from stackops.plan import plan
from stackops.render.ini import IniSections
from stackops.services import all_services
from stackops.services.base import CloudContext, Resources, Step
from stackops.services.images import KollaUser, OpenStackImage, OpenStackImages
from stackops.services.openstack import CatalogEntry, DatabaseUpgrade, MainConfig, OpenStackService
from stackops.services.upgrades import CHECK_COMPONENT
from tests.conftest import cloud

CONFIG = MainConfig("example.conf", "/etc/example")


class Example(OpenStackService[ServiceSpec]):
    """A made-up API service that borrows placement's settings in the spec."""

    name = "example"
    spec_path = "services.placement"
    port = 9999
    openstack_images = OpenStackImages(KollaUser("example", 42999), (OpenStackImage("example-api"),))
    main_config = CONFIG
    databases = ("example", "example_cell")
    messaging = True
    catalog = (CatalogEntry("example", "An example", path="/v2"),)
    database_upgrade = DatabaseUpgrade(
        check="example-status upgrade check",
        expand={"db-expand": "example-manage expand"},
        online={"db-online": "example-manage online"},
    )
    components: ClassVar[dict[str, Resources]] = {"api": Resources(cpu="10m", memory="64Mi")}

    def config(self, ctx: CloudContext) -> IniSections:
        return {"database": self.oslo_db(ctx), "keystone_authtoken": self.authtoken(ctx)}

    def steps(self, ctx: CloudContext) -> list[Step]:
        kolla = self.kolla(ctx, self.main_files(ctx), {"api": self.uwsgi_command(ctx)})
        return self.preamble(ctx, kolla)


def context(spec: dict[str, Any] | None = None) -> CloudContext:
    example_cloud = cloud(spec)
    # every service's, enabled or not (a service new to stackops is off by default)
    needed = [c for s in (*all_services(), Example()) for c in s.credentials(example_cloud.spec)]
    return CloudContext("demo", "openstack", example_cloud.spec, Credentials.placeholders(needed))


def openstack_services() -> list[OpenStackService[Any]]:
    return [s for s in all_services() if isinstance(s, OpenStackService)]


def test_a_declared_service_gets_its_passwords_named_after_it() -> None:
    keys = [c.key for c in Example().credentials(cloud().spec)]
    assert keys == ["example-database-password", "example-keystone-password", "example-messaging-password"]


def test_a_declared_service_gets_the_components_of_its_registration_and_upgrade_jobs() -> None:
    components = list(Example.components)
    assert components == ["api", "registration", CHECK_COMPONENT, "db-expand", "db-online"]


def test_a_declared_service_starts_with_its_config_database_messaging_user_and_registration() -> None:
    steps = Example().steps(context())
    expected = ["example-config", "example-database", "example-messaging", "example-registration"]
    assert [s.name for s in steps] == expected
    database_job = steps[1].objects[0]
    assert "example_cell" in " ".join(database_job["spec"]["template"]["spec"]["containers"][0]["args"])
    registration_args = steps[3].objects[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--internal-url=https://demo-example-api.openstack.svc:9999/v2" in registration_args
    assert "--type=example" in registration_args


def test_a_declared_upgrade_runs_each_command_with_the_main_config_of_the_new_release() -> None:
    upgrade = Example().upgrade(context())
    assert upgrade is not None
    assert upgrade.image == "example-api" and upgrade.uid == 42999
    assert list(upgrade.files) == ["example.conf"]
    assert list(upgrade.commands()) == [CHECK_COMPONENT, "db-expand", "db-online"]
    for command in upgrade.commands().values():
        assert [f.dest for f in command.files] == ["/etc/example/example.conf", "/etc/example/ca.crt"]


def test_the_registration_job_is_sized_by_the_service_it_registers() -> None:
    override = {"resources": {"registration": {"requests": {"memory": "333Mi"}}}}
    objects = plan(cloud({"services": {"nova": override}})).objects()
    jobs = [o for o in objects if o["kind"] == "Job"]

    def memory(prefix: str) -> str:
        (job,) = [j for j in jobs if j["metadata"]["name"].startswith(prefix)]
        return str(job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"])

    assert memory("demo-nova-registration") == "333Mi"
    assert memory("demo-glance-registration") == "128Mi"


@pytest.mark.parametrize("service", openstack_services(), ids=lambda s: s.name)
def test_every_openstack_service_keeps_to_the_contract(service: OpenStackService[Any]) -> None:
    ctx = context()
    upgrade = service.upgrade(ctx)
    if service.databases:
        assert upgrade is not None, "every OpenStack service with a database declares its database upgrade"
    if upgrade is not None:  # ceilometer's too, without a database: its resource types in gnocchi
        assert set(upgrade.commands()) <= set(service.components)
        assert upgrade.image == service.openstack_images.names[0]
    else:
        assert not service.databases  # swift: an upgrade rolls its pods
    steps = service.steps(ctx)
    assert steps[0].name == f"{service.name}-config"
    names = [s.name for s in steps]
    if service.catalog or service.keystone_account:
        assert f"{service.name}-registration" in names
        assert set(service.endpoints(ctx)) >= {entry.type for entry in service.catalog}
    assert (f"{service.name}-database" in names) == bool(service.databases)


def test_heat_registers_its_second_api_under_its_own_name() -> None:
    heat = next(s for s in openstack_services() if s.name == "heat")
    names = [s.name for s in heat.steps(context())]
    assert "heat-registration" in names and "heat-registration-heat-cfn" in names


def test_keystones_registration_resources_still_size_the_jobs_of_services_that_set_none() -> None:
    keystone = {"resources": {"registration": {"requests": {"memory": "200Mi"}}}}
    nova = {"resources": {"registration": {"requests": {"memory": "333Mi"}}}}
    objects = plan(cloud({"services": {"keystone": keystone, "nova": nova}})).objects()
    jobs = [o for o in objects if o["kind"] == "Job"]

    def memory(prefix: str) -> str:
        (job,) = [j for j in jobs if j["metadata"]["name"].startswith(prefix)]
        return str(job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"])

    assert memory("demo-nova-registration") == "333Mi"  # its own wins
    assert memory("demo-glance-registration") == "200Mi"  # keystone's, as before each had its own
