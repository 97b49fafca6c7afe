"""A service stackops gains after clouds exist (an OptInService spec) is off in every spec that does
not turn it on, so an operator upgrade deploys nothing new into existing clouds; the services there
were from the start stay on by default."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stackops.api.crd import structural
from stackops.api.models import OpenStackCloudSpec, OptInService, ServiceSpec, ServicesSpec
from stackops.services.base import CloudContext, Service, Step


class NewSpec(OptInService, ServiceSpec):
    """A service added to stackops after clouds were made."""


class ServicesWithANewOne(ServicesSpec):
    new: NewSpec = Field(default_factory=NewSpec)


class SpecWithANewService(OpenStackCloudSpec):
    services: ServicesWithANewOne = Field(default_factory=ServicesWithANewOne)


class New(Service):
    name = "new"
    spec_path = "services.new"

    def steps(self, ctx: CloudContext) -> list[Step]:
        return []


def spec(services: dict[str, Any]) -> SpecWithANewService:
    return SpecWithANewService.model_validate({"release": "2026.1", "services": services})


def test_a_new_service_is_off_unless_the_spec_turns_it_on() -> None:
    assert not New().enabled(spec({}))
    assert not New().enabled(spec({"new": {"replicas": 2}}))
    assert New().enabled(spec({"new": {"enabled": True}}))


# the services of stackops' first clouds; any service added since is an OptInService
FIRST_SERVICES = ("keystone", "placement", "glance", "nova", "neutron", "cinder", "horizon", "heat")


def test_the_services_stackops_had_stay_on_by_default() -> None:
    services = spec({}).services
    assert all(getattr(services, name).enabled for name in FIRST_SERVICES)
    assert set(FIRST_SERVICES) <= set(ServicesSpec.model_fields)


def test_every_service_added_since_is_off_by_default() -> None:
    services = spec({}).services
    later = set(ServicesSpec.model_fields) - set(FIRST_SERVICES)
    assert not any(getattr(services, name).enabled for name in later)


def test_the_crd_and_the_reference_say_which_default_a_service_has() -> None:
    schema = ServicesWithANewOne.model_json_schema(by_alias=True, mode="validation")
    properties = structural(schema, schema["$defs"])["properties"]
    assert properties["new"]["properties"]["enabled"]["description"].endswith("Default: false")
    assert properties["heat"]["properties"]["enabled"]["description"] == "Default: true"
