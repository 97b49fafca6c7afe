"""Nothing left behind, for real: heat registered in keystone 29 from PyPI by its rendered Jobs, then
keystone's deregistration Job of the same cloud with heat disabled, then heat's Jobs again once it
is enabled again. No heat process runs: registration needs keystone alone."""

from __future__ import annotations

import time
from typing import Any

from stackops.plan import plan
from stackops.services import heat
from tests.real.deployment import Deployment
from tests.support.mariadb import MariaDB

HEAT_TYPES = {"orchestration", "cloudformation"}
HEAT_JOBS = ("database", "registration", "registration-heat-cfn", "stack-domain")


def heat_in_keystone(conn: Any) -> dict[str, Any]:
    """What heat has in keystone: its catalog entries with their endpoints' interfaces, its users."""
    identity = conn.identity
    services = {s.type: s for s in identity.services() if s.type in HEAT_TYPES}
    domain = identity.find_domain(heat.STACK_DOMAIN, ignore_missing=True)
    return {
        "catalog": {t: sorted(e.interface for e in identity.endpoints(service_id=s.id)) for t, s in services.items()},
        "users": sorted(
            name
            for name, domain_id in (("heat", "default"), (heat.STACK_DOMAIN_ADMIN, domain.id if domain else None))
            if domain_id and identity.find_user(name, domain_id=domain_id, ignore_missing=True)
        ),
    }


REGISTERED = {
    "catalog": {"orchestration": ["internal", "public"], "cloudformation": ["internal", "public"]},
    "users": ["heat", heat.STACK_DOMAIN_ADMIN],
}


def databases(mariadb: MariaDB) -> set[str]:
    with mariadb.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        return {row[0] for row in cursor.fetchall()}


def test_disabling_a_service_removes_its_catalog_entries_and_users_and_enabling_it_brings_them_back(
    keystone: str, deployed: Deployment, mariadb: MariaDB, heat_jobs: dict[str, str]
) -> None:
    # heat as its Jobs registered it (the session's, which test_cinder_heat looks at too)
    assert heat_in_keystone(deployed.connect()) == REGISTERED

    spec = deployed.cloud.spec.model_copy(deep=True)
    spec.services.heat.enabled = False
    heat_off = plan(deployed.cloud.model_copy(update={"spec": spec}), deployed.credentials)
    assert not [s for s in heat_off.steps if s.service == "heat"]
    with deployed.using(heat_off):
        started = time.monotonic()
        result = deployed.stackops_job("keystone", "deregistration")
        took = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert "deregister-services: service heat (orchestration) removed" in result.stdout
        assert "deregister-services: user heat_domain_admin in domain heat removed" in result.stdout
        print(f"deregistration Job: {took:.1f} s\n{result.stdout}")
        assert heat_in_keystone(deployed.connect()) == {"catalog": {}, "users": []}
        # its database and credentials stay, for the day it is enabled again
        assert "heat" in databases(mariadb)
        assert heat.DOMAIN_ADMIN_PASSWORD_KEY in deployed.credentials.values()
        again = deployed.stackops_job("keystone", "deregistration")
        assert again.returncode == 0 and again.stdout.strip() == "deregister-services: nothing to change"

    # enabled again: its registration Jobs (new ones, as the pruned Jobs are gone) register it again
    for component in HEAT_JOBS:
        result = deployed.stackops_job("heat", component)
        assert result.returncode == 0, result.stderr
    assert heat_in_keystone(deployed.connect()) == REGISTERED
    # and heat's user logs in with the password of the credentials Secret, which never changed
    own = deployed.connect("heat", "heat-keystone-password", "service")
    assert own.authorize()
