"""The upgrade plan: its order, its Jobs' names and objects, and that it leaves the regular
rendering alone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stackops.credentials import Credentials
from stackops.plan import plan, required_credentials
from stackops.render.kolla import KollaCommand
from stackops.services import all_services, service
from stackops.services.base import CloudContext
from stackops.services.upgrades import ServiceUpgrade
from stackops.upgrade.plan import (
    AGENTS_RELEASE_ANNOTATION,
    FINISH,
    UPGRADE_LABEL,
    UpgradePlan,
    _roll,
    _ServiceJobs,
    plan_upgrade,
    upgrade_order,
)
from tests.conftest import cloud


def upgrade_of(spec: dict[str, Any] | None = None, source: str = "2025.2") -> UpgradePlan:
    target = cloud({"release": "2026.1", **(spec or {})})
    return plan_upgrade(target, source, Credentials.placeholders(required_credentials(target.spec)))


def upgrade_config(upgrade: UpgradePlan, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The service's upgrade config Secret, and the command of each of its Kolla config files."""
    secret = next(o for o in upgrade.checks if o["metadata"]["name"] == f"demo-{name}-upgrade-config")
    data = secret["stringData"]
    return secret, {key: json.loads(value)["command"] for key, value in data.items() if key.endswith(".json")}


def positions(upgrade: UpgradePlan) -> dict[str, int]:
    return {step.id: i for i, step in enumerate(upgrade.steps)}


DECLARED = ("keystone", "placement", "glance", "cinder", "neutron", "nova", "heat")


def test_services_upgrade_in_upstream_order_whichever_of_them_a_cloud_has() -> None:
    every = [s.name for s in upgrade_order(all_services())]
    assert every == [
        "mariadb", "memcached", "rabbitmq", "keystone", "placement", "glance", "cinder", "neutron", "nova",
        "horizon", "heat", "barbican", "designate", "gnocchi", "manila", "octavia", "swift", "aodh", "ceilometer",
    ]  # fmt: skip
    without_cinder = upgrade_order([s for s in all_services() if s.name != "cinder"])
    assert [s.name for s in without_cinder] == [name for name in every if name != "cinder"]


def test_infrastructure_then_services_in_upstream_order_then_agents_then_online_migrations() -> None:
    upgrade = upgrade_of()
    at = positions(upgrade)
    assert at["mariadb/roll"] < at["memcached/roll"] < at["keystone/db-expand"]
    assert at["keystone/db-contract"] < at["placement/db-sync"] < at["glance/db-expand"]
    first_of: dict[str, int] = {}
    for step in upgrade.steps:
        first_of.setdefault(step.service, at[step.id])
    named = [s for s in ("keystone", "placement", "glance", "cinder", "neutron", "nova", "heat") if s in first_of]
    assert [first_of[s] for s in named] == sorted(first_of[s] for s in named)
    assert upgrade.steps[-1].id == f"cloud/{FINISH}" and upgrade.steps[-1].kind == "finish"
    agents = [at[s.id] for s in upgrade.steps if s.name == "agents"]
    online = [at[s.id] for s in upgrade.steps if s.name == "db-online-migrations"]
    others = [at[s.id] for s in upgrade.steps if s.name not in ("agents", "db-online-migrations", FINISH)]
    assert {s.service for s in upgrade.steps if s.name == "agents"} == {"nova", "neutron", "cinder"}
    assert max(others) < min(agents) and max(agents) < min(online)
    assert {s.service for s in upgrade.steps if s.name == "db-online-migrations"} == {"placement", "cinder", "nova"}
    for step in upgrade.steps:
        kinds = {o["kind"] for o in step.objects}
        if step.service in DECLARED:
            assert ("Job" in kinds) == (step.kind == "jobs"), step.id  # their rolls apply no Job
        if step.kind == "roll":
            assert step.contract == ("Job" in kinds), step.id  # a migration in a roll closes the way back
            assert [o for s in step.stages for o in s.objects] == step.objects
        assert step.name != "agents" or kinds == {"DaemonSet"}


def test_a_service_without_a_declaration_rolls_through_its_regular_steps_migrations_first() -> None:
    upgrade = upgrade_of()
    declared = (*DECLARED, "horizon")
    rolls = [s for s in upgrade.steps if s.kind == "roll" and s.service not in declared and s.name != "agents"]
    assert {s.service for s in rolls} == {"mariadb", "memcached", "rabbitmq"}
    for step in rolls:
        regular = [s.name for s in upgrade.converged.steps if s.service == step.service]
        assert [s.name for s in step.stages] == [n for n in regular if n in {s.name for s in step.stages}]
        names = [s.name for s in step.stages]
        migrations = [i for i, s in enumerate(step.stages) if any(o["kind"] == "Job" for o in s.objects)]
        assert step.contract == bool(migrations), step.id
        workloads = [i for i, s in enumerate(step.stages) if any(o["kind"] == "Deployment" for o in s.objects)]
        assert not migrations or not workloads or migrations[0] < workloads[0], names  # migrate, then the pods


def test_horizon_migrates_its_session_table_with_the_new_release_before_the_dashboard_rolls() -> None:
    upgrade = upgrade_of()
    steps = [s for s in upgrade.steps if s.service == "horizon"]
    assert [(s.name, s.kind) for s in steps] == [("db-sync", "jobs"), ("roll", "roll")]
    [job] = [o for o in steps[0].objects if o["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/horizon:2026.1-ubuntu-noble")
    assert {"name": "KOLLA_SKIP_EXTEND_START", "value": "true"} in job["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    # its config Secret comes with it (horizon has no pre-flight check to bring it earlier)
    [secret] = [o for o in steps[0].objects if o["kind"] == "Secret"]
    data = secret["stringData"]
    assert json.loads(data["horizon-db-sync.json"])["command"] == (
        "django-admin migrate sessions --noinput --settings openstack_dashboard.settings"
    )
    assert "django.contrib.sessions.backends.db" in data["local_settings.py"]


@pytest.mark.parametrize("name", DECLARED)
def test_each_service_expands_before_its_pods_roll_and_contracts_after(name: str) -> None:
    upgrade = upgrade_of()
    steps = [s for s in upgrade.steps if s.service == name and s.name != "agents"]
    roll = next(i for i, s in enumerate(steps) if s.name == "roll")
    assert steps[:roll] and all(s.kind == "jobs" and not s.contract for s in steps[:roll])
    assert all(s.kind == "jobs" and s.contract for s in steps[roll + 1 :])
    spec = cloud().spec
    ctx = CloudContext("demo", "openstack", spec, Credentials.placeholders(required_credentials(spec)))
    declared = service(name).upgrade(ctx)
    assert declared is not None and declared.check is not None
    assert [s.name for s in steps if s.kind == "jobs"] == [*declared.expand, *declared.contract, *declared.online]


def test_a_declared_roll_keeps_the_regular_order_of_its_stages_so_nova_conductors_go_before_its_api() -> None:
    upgrade = upgrade_of()
    nova = upgrade.step("nova/roll")
    names = [s.name for s in nova.stages]
    regular = [s.name for s in upgrade.converged.steps if s.service == "nova" and s.name in names]
    assert names == regular
    assert names.index("nova-conductor") < names.index("nova-scheduler") < names.index("nova-api")
    assert not any(o["kind"] == "DaemonSet" for o in nova.objects)  # nova-compute goes with the agents


def test_neutron_rolls_the_ovn_chassis_before_the_ovn_databases_northd_and_its_servers() -> None:
    upgrade = upgrade_of()
    names = [s.name for s in upgrade.step("neutron/roll").stages]
    chassis = ["neutron-ovn-controller", "neutron-ovn-controller-gateway"]
    assert names[:3] == ["neutron-config", *chassis], names
    rest = names[3:]
    assert any("northd" in n for n in rest) and "neutron-api" in rest
    agents = upgrade.step("neutron/agents")
    assert [o["metadata"]["name"] for o in agents.objects] == ["demo-neutron-metadata-agent"]
    assert upgrade.step("neutron/db-expand").contract is False and upgrade.step("neutron/db-contract").contract


def test_nova_and_cinder_start_again_once_the_agents_run_the_new_release() -> None:
    """Rolled with a marker naming the release their agents still ran; the final converge has none."""
    upgrade = upgrade_of()
    for name in ("nova", "cinder"):
        rolled = [o for o in upgrade.step(f"{name}/roll").objects if o["kind"] in ("Deployment", "StatefulSet")]
        assert rolled, name
        for obj in rolled:
            annotations = obj["spec"]["template"]["metadata"]["annotations"]
            assert annotations[AGENTS_RELEASE_ANNOTATION] == "2025.2", obj["metadata"]["name"]
    keystone = [o for o in upgrade.step("keystone/roll").objects if o["kind"] == "Deployment"]
    assert keystone and all(
        AGENTS_RELEASE_ANNOTATION not in o["spec"]["template"]["metadata"].get("annotations", {}) for o in keystone
    )
    assert not any(
        AGENTS_RELEASE_ANNOTATION in o["spec"]["template"]["metadata"].get("annotations", {})
        for o in upgrade.converged.objects()
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    )


def test_nova_migrates_both_databases_before_its_pods_and_its_data_after_the_compute_agents() -> None:
    upgrade = upgrade_of()
    secret, commands = upgrade_config(upgrade, "nova")
    manage = "nova-manage --config-file /etc/nova/nova.conf"
    assert commands == {
        "nova-upgrade-check.json": "nova-status --config-file /etc/nova/nova.conf upgrade check",
        "nova-api-db-sync.json": f"{manage} api_db sync",
        "nova-db-sync.json": f"{manage} db sync",
        "nova-db-online-migrations.json": f"{manage} db online_data_migrations",
    }
    at = positions(upgrade)
    assert at["nova/api-db-sync"] < at["nova/db-sync"] < at["nova/roll"] < at["nova/agents"]
    assert at["nova/agents"] < at["nova/db-online-migrations"]
    assert "[upgrade_levels]\ncompute = auto" in secret["stringData"]["nova.conf"]


def test_a_roll_first_that_names_no_step_is_a_mistake_said_at_once() -> None:
    upgrade = upgrade_of()
    regular = [s for s in upgrade.converged.steps if s.service == "keystone"]
    declared = ServiceUpgrade("keystone", 0, {}, roll_first=("keystone-apii",))
    with pytest.raises(ValueError, match="keystone: roll_first names no step of the service: keystone-apii"):
        _roll(service("keystone"), regular, declared, "2025.2")


def test_keystone_runs_expand_migrate_contract_and_the_status_check_from_the_new_release() -> None:
    upgrade = upgrade_of()
    _, commands = upgrade_config(upgrade, "keystone")
    conf = "--config-file /etc/keystone/keystone.conf"
    assert commands == {
        "keystone-upgrade-check.json": f"keystone-status {conf} upgrade check",
        "keystone-db-expand.json": f"keystone-manage {conf} db_sync --expand",
        "keystone-db-migrate.json": f"keystone-manage {conf} db_sync --migrate",
        "keystone-db-contract.json": f"keystone-manage {conf} db_sync --contract",
    }
    jobs = [o for o in upgrade.checks if o["kind"] == "Job"] + [
        o for s in upgrade.steps if s.kind == "jobs" for o in s.objects if o["kind"] == "Job"
    ]
    images = {c["image"] for j in jobs for c in j["spec"]["template"]["spec"]["containers"]}
    assert images and all(":2026.1-" in i for i in images), images
    assert all(j["metadata"]["labels"][UPGRADE_LABEL] == "2025.2-2026.1" for j in jobs)


def test_job_names_come_from_the_release_pair_service_and_step_not_from_the_spec() -> None:
    plain = upgrade_of()
    tuned = upgrade_of({"services": {"keystone": {"config": {"DEFAULT": {"debug": True}}}}})
    slurp = upgrade_of(source="2025.1")

    def names(upgrade: UpgradePlan) -> list[str]:
        return [
            o["metadata"]["name"] for s in upgrade.steps if s.kind == "jobs" for o in s.objects if o["kind"] == "Job"
        ]

    assert names(plain) == names(tuned)  # a fix in the spec finds the same Jobs
    assert set(names(plain)).isdisjoint(names(slurp))  # another upgrade runs its own
    assert all(len(n) <= 63 for n in names(plain))

    def job(upgrade: UpgradePlan) -> dict[str, Any]:
        return next(o for s in upgrade.steps for o in s.objects if o["kind"] == "Job")

    assert job(plain)["spec"] != job(tuned)["spec"]  # the config change is in the Job all the same


def test_the_upgrade_renders_byte_for_byte_the_same_twice() -> None:
    assert json.dumps(upgrade_of().__dict__, default=lambda o: o.__dict__, sort_keys=True) == json.dumps(
        upgrade_of().__dict__, default=lambda o: o.__dict__, sort_keys=True
    )


def test_upgrade_commands_live_in_their_own_secret_so_the_running_pods_keep_their_config_hash() -> None:
    regular = plan(cloud())
    upgrade = upgrade_of()
    for name in ("keystone", "placement", "glance"):
        config = next(o for o in regular.objects() if o["metadata"]["name"] == f"demo-{name}-config")
        own = next(o for o in upgrade.checks if o["metadata"]["name"] == f"demo-{name}-upgrade-config")
        commands = {key for key in own["stringData"] if key.endswith(".json")}
        assert f"{name}-upgrade-check.json" in commands and f"{name}-upgrade-check.json" not in config["stringData"]
        # placement's expand is its regular db sync: the same command, in the upgrade's own Secret
        assert commands & set(config["stringData"]) <= {f"{name}-db-sync.json"}, name
    assert not any(UPGRADE_LABEL in o["metadata"].get("labels", {}) for o in regular.objects())


def test_a_declared_command_for_an_unknown_component_is_a_mistake_said_at_once() -> None:
    keystone = service("keystone")
    ctx = CloudContext("demo", "openstack", cloud().spec, Credentials({}))
    declared = ServiceUpgrade("keystone", 0, {}, expand={"db-grow": KollaCommand("true")})
    with pytest.raises(ValueError, match="keystone: upgrade commands for unknown components: db-grow"):
        _ServiceJobs(ctx, keystone, declared, "2025.2", "2026.1")


def test_keystones_upgrade_jobs_find_the_keys_where_keystone_status_looks_before_reading_its_config() -> None:
    upgrade = upgrade_of()
    jobs = [o for o in upgrade.checks if o["kind"] == "Job" and "keystone" in o["metadata"]["name"]]
    jobs += [o for s in upgrade.steps if s.service == "keystone" for o in s.objects if o["kind"] == "Job"]
    assert len(jobs) == 4  # upgrade-check, db-expand, db-migrate, db-contract
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["/etc/keystone/fernet-keys"] == "fernet-keys", job["metadata"]["name"]
        secrets = {v["name"]: v.get("secret", {}).get("secretName") for v in pod["volumes"]}
        assert secrets["fernet-keys"] == "demo-keystone-fernet-keys"
    glance = [o for s in upgrade.steps if s.service == "glance" for o in s.objects if o["kind"] == "Job"]
    assert glance and all(len(j["spec"]["template"]["spec"]["volumes"]) == 1 for j in glance)  # config only
