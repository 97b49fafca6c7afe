"""Credential rotation: the decisions of each pass (pure), what each phase renders, and the operator's
passes taking a rotation from the spec's request to its end against the in-memory API.
tests/real/test_credential_rotation.py runs the phases' Jobs and rolls for real."""

from __future__ import annotations

import base64
import copy
import itertools
from typing import Any

import pytest

from stackops.credentials import (
    NEXT_PREFIX,
    Credentials,
    RotationAction,
    RotationPhase,
    RotationState,
    advance_rotation,
    begin_rotation,
    promote_rotation,
    rotation_action,
)
from stackops.kube.credentials_secret import ROTATION_ANNOTATION, credentials_secret_name
from stackops.plan import Plan, migrated_keys, plan, rotated_credentials
from stackops.render.output import to_yaml
from stackops.services.identity import admin_passwords_in_use
from stackops.services.keystone import CREDENTIAL_KEY_PREFIX
from tests.conftest import cloud
from tests.support.passes import SMALL, CloudPasses
from tests.support.rendered import cloud_credentials, find, secret_data, secret_files

GRANTING, ROLLING, REVOKING = RotationPhase
ROTATED = {"services": {"heat": {"enabled": True}}}  # nova and heat: messaging, and a user that stays


@pytest.mark.parametrize(
    ("state", "requested", "converged", "action"),
    [
        (RotationState(), 0, True, RotationAction.NONE),
        (RotationState(), 1, False, RotationAction.NONE),  # not halfway through a deployment
        (RotationState(), 1, True, RotationAction.BEGIN),
        (RotationState(2), 2, True, RotationAction.NONE),  # done already
        (RotationState(2), 1, True, RotationAction.NONE),  # a lower generation asks for nothing
        (RotationState(1, GRANTING), 1, False, RotationAction.NONE),  # the phase's Jobs run
        (RotationState(1, GRANTING), 1, True, RotationAction.ADVANCE),
        (RotationState(1, ROLLING), 3, True, RotationAction.ADVANCE),  # another one waits for this one
        (RotationState(1, REVOKING), 1, True, RotationAction.PROMOTE),
    ],
)
def test_what_a_pass_does_about_a_rotation(
    state: RotationState, requested: int, converged: bool, action: RotationAction
) -> None:
    assert rotation_action(state, requested, converged) is action


def test_the_state_reads_back_as_written_and_a_bad_one_is_named() -> None:
    own = frozenset({"rabbitmq-admin-password"})
    for state in (
        RotationState(),
        RotationState(3, ROLLING),
        RotationState(4, None, True),
        RotationState(5, None, True, own),
    ):
        assert RotationState.parse(str(state)) == state
    assert str(RotationState(4, None, twins=True)) == "4/Done/b"  # as written before own pairs
    assert str(RotationState(5, REVOKING, False, own)) == "5/Revoking/a/rabbitmq-admin-password"
    assert RotationState.parse(None) == RotationState()
    for bad in ("1/Sideways/a", "1/Done/a/", "1/Done/a/x/y"):
        with pytest.raises(ValueError, match=f"'{bad}' is not generation/phase/accounts"):
            RotationState.parse(bad)


def values_of(spec: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    c = cloud(spec)
    return c, cloud_credentials(c)


def test_a_rotation_adds_new_values_beside_the_live_ones_and_promotes_them_at_its_end() -> None:
    c, values = values_of(ROTATED)
    rotated = rotated_credentials(c.spec)
    keys = {spec.key for spec in rotated}
    assert "nova-messaging-password" in keys and "placement-database-password" in keys
    assert "heat-keystone-password" not in keys  # heat's user stays: trusts name it
    assert "keystone-admin-password" in keys and "mariadb-root-password" in keys  # the admin's, root's
    assert "rabbitmq-admin-password" in keys  # RabbitMQ's administrator's
    assert "horizon-database-password" in keys
    assert "rabbitmq-erlang-cookie" not in keys and "heat-domain-admin-password" not in keys
    begun, state = begin_rotation(values, RotationState(), 1, rotated, migrated_keys(c.spec))
    assert state == RotationState(1, GRANTING)
    assert {k for k in begun if k.startswith(NEXT_PREFIX)} == {f"{NEXT_PREFIX}{k}" for k in keys}
    assert all(begun[k] == values[k] for k in values if not k.startswith(CREDENTIAL_KEY_PREFIX))  # live: kept
    assert all(begun[f"{NEXT_PREFIX}{k}"] != values[k] for k in keys)
    # credential keys: the staged key is the primary now, a new one staged, the old primary kept
    old = {k[len(CREDENTIAL_KEY_PREFIX) :]: v for k, v in values.items() if k.startswith(CREDENTIAL_KEY_PREFIX)}
    new = {k[len(CREDENTIAL_KEY_PREFIX) :]: v for k, v in begun.items() if k.startswith(CREDENTIAL_KEY_PREFIX)}
    assert sorted(new) == ["0", "1", "2"] and new["2"] == old["0"] and new["1"] == old["1"]
    with pytest.raises(ValueError, match="under way already"):
        begin_rotation(begun, state, 2, rotated)
    with pytest.raises(ValueError, match="not revoking yet"):
        promote_rotation(begun, state)
    state = advance_rotation(advance_rotation(state))
    with pytest.raises(ValueError, match="has no next phase"):
        advance_rotation(state)
    promoted, state = promote_rotation(begun, state, migrated_keys(c.spec), rotated)
    # the services' pairs and RabbitMQ's administrator's own pair on their -b accounts
    assert state == RotationState(1, None, twins=True, own_twins=frozenset({"rabbitmq-admin-password"}))
    assert {k: promoted[k] for k in keys} == {k: begun[f"{NEXT_PREFIX}{k}"] for k in keys}
    assert not any(k.startswith(NEXT_PREFIX) for k in promoted)
    assert promoted[f"{CREDENTIAL_KEY_PREFIX}0"] == new["0"] and promoted[f"{CREDENTIAL_KEY_PREFIX}2"] == new["2"]
    assert f"{CREDENTIAL_KEY_PREFIX}1" not in promoted  # migrated away from: dropped


def phases(spec: dict[str, Any]) -> dict[str, Plan]:
    """The cloud rendered before a rotation, in each of its phases, and after it."""
    c, values = values_of(spec)
    rendered = {"before": plan(c, Credentials(values))}
    values, state = begin_rotation(values, RotationState(), 1, rotated_credentials(c.spec), migrated_keys(c.spec))
    while state.phase is not None:
        rendered[state.phase.value] = plan(c, Credentials(values, rotation=state))
        if state.phase is REVOKING:
            values, state = promote_rotation(values, state, migrated_keys(c.spec), rotated_credentials(c.spec))
        else:
            state = advance_rotation(state)
    rendered["after"] = plan(c, Credentials(values, rotation=state))
    return rendered


def env_keys(job: dict[str, Any]) -> dict[str, str]:
    """The credentials Secret key of each Secret value a stackops Job is given (as a file)."""
    return {name: ref["key"] for name, ref in secret_files(job["spec"]["template"]["spec"]).items()}


def args(job: dict[str, Any]) -> list[str]:
    return list(job["spec"]["template"]["spec"]["containers"][0]["args"])


def test_each_phase_renders_what_it_grants_uses_and_revokes() -> None:
    rendered = phases(ROTATED)
    key, new = "placement-database-password", f"{NEXT_PREFIX}placement-database-password"
    database = {name: env_keys(find(p, "Job", "placement", "database")) for name, p in rendered.items()}
    assert {name: (e["STACKOPS_DB_PASSWORD"], e.get("STACKOPS_DB_OLD_PASSWORD")) for name, e in database.items()} == {
        "before": (key, None),
        "Granting": (new, key),  # both accepted
        "Rolling": (new, key),
        "Revoking": (new, None),  # the old one no longer
        "after": (key, None),  # the promoted value, under its own key
    }
    # placement's config: the old password and account until rolling, the new ones from then on
    conf = {name: secret_data(p, "demo-placement-config")["placement.conf"] for name, p in rendered.items()}
    assert "username = placement\n" in conf["Granting"] and "username = placement-b\n" in conf["Rolling"]
    assert conf["before"] == conf["Granting"] and conf["Rolling"] == conf["Revoking"] == conf["after"]
    registration = {name: args(find(p, "Job", "placement", "registration")) for name, p in rendered.items()}
    assert "--user=placement" in registration["before"]
    assert "--user=placement-b" in registration["Granting"] and "--user=placement-b" in registration["after"]
    assert [a for a in registration["Revoking"] if a.startswith("--remove-user")] == ["--remove-user=placement"]
    messaging = {name: args(find(p, "Job", "nova", "messaging")) for name, p in rendered.items()}
    assert messaging["Granting"][2:] == ["--user=nova-b", "--vhost=nova"]
    assert messaging["Revoking"][2:] == ["--user=nova-b", "--vhost=nova", "--remove-user=nova"]
    nova = secret_data(rendered["Rolling"], "demo-nova-config")["nova.conf"]
    assert "transport_url = rabbit://nova-b:" in nova and "/nova\n" in nova
    heat = secret_data(rendered["after"], "demo-heat-config")["heat.conf"]
    assert "username = heat\n" in heat and "username = heat-b" not in heat  # heat's user stays
    # keystone's stored credentials move to the new key once every API pod has it, and only then
    migrations = {
        name: [s.name for s in p.steps if s.name == "keystone-credential-migrate"] for name, p in rendered.items()
    }
    assert [name for name, steps in migrations.items() if steps] == ["Revoking"]
    # nova's cell mappings become templates while granting, before any config switches
    cells = {name: [s.name for s in p.steps if s.name == "nova-cell-urls"] for name, p in rendered.items()}
    assert [name for name, steps in cells.items() if steps] == ["Granting"]
    script = secret_data(rendered["Granting"], "demo-nova-rotation-config")["nova-cell-urls.sh"]
    assert "--database_connection '{scheme}://{username}:{password}@{hostname}:{port}/nova_cell0?{query}'" in script
    migrate = find(rendered["Revoking"], "Job", "keystone", "credential-migrate")
    assert migrate["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == "demo-keystone-rotation-config"


def bootstrap_key(job: dict[str, Any]) -> str:
    """The credentials Secret key keystone's bootstrap Job takes the admin password from."""
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    key: str = next(v for v in env if v["name"] == "OS_BOOTSTRAP_PASSWORD")["valueFrom"]["secretKeyRef"]["key"]
    return key


def test_the_admin_and_root_passwords_switch_in_order() -> None:
    rendered = phases(ROTATED)
    admin, new_admin = "keystone-admin-password", f"{NEXT_PREFIX}keystone-admin-password"
    # keystone takes one password per user: the bootstrap Job sets the new one when configs switch,
    # and the Jobs after it in the plan log in with it from then on
    bootstrap = {name: bootstrap_key(find(p, "Job", "keystone", "bootstrap")) for name, p in rendered.items()}
    expected = {"before": admin, "Granting": admin, "Rolling": new_admin, "Revoking": new_admin, "after": admin}
    assert bootstrap == expected
    registration = {name: env_keys(find(p, "Job", "nova", "registration")) for name, p in rendered.items()}
    assert {name: e["OS_PASSWORD"] for name, e in registration.items()} == expected
    # root: one account, both passwords accepted until nothing uses the old one, as a service's
    root, new_root = "mariadb-root-password", f"{NEXT_PREFIX}mariadb-root-password"
    jobs = {name: [o for o in p.objects() if o["metadata"]["name"].startswith("demo-mariadb-root-password")]
            for name, p in rendered.items()}  # fmt: skip
    assert [name for name, found in jobs.items() if found] == ["Granting", "Rolling", "Revoking"]
    keys = {name: env_keys(found[0]) for name, found in jobs.items() if found}
    assert {name: (e["STACKOPS_DB_ADMIN_PASSWORD"], e["STACKOPS_DB_PASSWORD"], e.get("STACKOPS_DB_OLD_PASSWORD"))
            for name, e in keys.items()} == {
        "Granting": (root, new_root, root),  # logs in with the old, has root accept both
        "Rolling": (new_root, new_root, root),
        "Revoking": (new_root, new_root, None),  # the new one alone
    }  # fmt: skip
    assert args(jobs["Granting"][0])[-3:] == ["--user=root", "--account-host=%", "--account-host=localhost"]
    database = {name: env_keys(find(p, "Job", "nova", "database")) for name, p in rendered.items()}
    assert {name: e["STACKOPS_DB_ADMIN_PASSWORD"] for name, e in database.items()} == {
        "before": root, "Granting": root, "Rolling": new_root, "Revoking": new_root, "after": root,
    }  # fmt: skip
    # the server reads both files, the new one only while it is there: its pod never rolls for it
    server = find(rendered["before"], "StatefulSet", "mariadb", "server")["spec"]["template"]["spec"]
    assert secret_files(server) == {
        "DB_ROOT_PASSWORD": {"name": "demo-credentials", "key": root},
        "DB_ROOT_PASSWORD_NEXT": {"name": "demo-credentials", "key": new_root, "optional": "true"},
    }
    servers = [find(p, "StatefulSet", "mariadb", "server") for p in rendered.values()]
    assert all(s == servers[0] for s in servers)


def test_rabbitmqs_administrator_alternates_between_its_pair_without_rolling_the_server() -> None:
    """RabbitMQ takes one password per user: the administrator is a pair like a service's user. Its
    Job grants the new password to the other account as the one in use, the messaging Jobs log in
    as the new one from rolling on, and the Job removes the old one at the end; the server's pod and
    config hash never change, only the first-boot file that names the administrator a node makes."""
    rendered = phases(ROTATED)
    key, new = "rabbitmq-admin-password", f"{NEXT_PREFIX}rabbitmq-admin-password"
    jobs = {
        name: [
            o for o in p.objects() if o["kind"] == "Job" and o["metadata"]["name"].startswith("demo-rabbitmq-messaging")
        ]
        for name, p in rendered.items()
    }
    assert [name for name, found in jobs.items() if found] == ["Granting", "Rolling", "Revoking"]
    admin_jobs = {name: found[0] for name, found in jobs.items() if found}

    def login(job: dict[str, Any]) -> tuple[str, str, str]:
        """Who the Job logs in as, with which key's value, and which key's value it sets."""
        env = {v["name"]: v["value"] for v in job["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in v}
        keys = env_keys(job)
        return env["STACKOPS_MQ_ADMIN_USER"], keys["STACKOPS_MQ_ADMIN_PASSWORD"], keys["STACKOPS_MQ_PASSWORD"]

    assert {name: login(job) for name, job in admin_jobs.items()} == {
        "Granting": ("stackops", key, new),  # as the account in use, the new password to the other
        "Rolling": ("stackops-b", new, new),
        "Revoking": ("stackops-b", new, new),
    }
    assert {name: args(job)[2:] for name, job in admin_jobs.items()} == {
        "Granting": ["--user=stackops-b"],
        "Rolling": ["--user=stackops-b"],
        "Revoking": ["--user=stackops-b", "--remove-user=stackops"],
    }
    assert (
        admin_jobs["Granting"]["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "create-messaging-admin"
    )
    # every messaging Job logs in as the administrator of the phase
    nova = {name: find(p, "Job", "nova", "messaging") for name, p in rendered.items()}
    assert {name: login(job)[:2] for name, job in nova.items()} == {
        "before": ("stackops", key),
        "Granting": ("stackops", key),
        "Rolling": ("stackops-b", new),
        "Revoking": ("stackops-b", new),
        "after": ("stackops-b", key),  # the promoted value, under its own key
    }
    # a node booting on an empty database makes the administrator the Jobs use at that moment
    config = {name: find(p, "Secret", "rabbitmq", "config") for name, p in rendered.items()}
    first_boot = {name: c["stringData"]["default-user.conf"] for name, c in config.items()}
    assert first_boot["before"] == first_boot["Granting"] != first_boot["Rolling"]
    assert first_boot["Rolling"] == first_boot["Revoking"] == first_boot["after"]
    c, values = values_of(ROTATED)
    values, state = begin_rotation(values, RotationState(), 1, rotated_credentials(c.spec))
    state = advance_rotation(state)
    rolling = find(plan(c, Credentials(values, rotation=state)), "Secret", "rabbitmq", "config")["stringData"]
    assert rolling["default-user.conf"] == (
        f"default_user = stackops-b\ndefault_pass = {values[new]}\ndefault_user_tags.administrator = true\n"
    )
    assert all("default_" not in c["stringData"]["rabbitmq.conf"] for c in config.values())
    # ... and the server never rolls for it
    servers = [find(p, "StatefulSet", "rabbitmq", "server") for p in rendered.values()]
    assert all(s == servers[0] for s in servers)


def test_rabbitmqs_administrator_keeps_its_own_side_in_a_cloud_rotated_before_it_rotated() -> None:
    """A cloud rotated (once) by a stackops that did not rotate RabbitMQ's administrator: its
    services use their -b accounts, the administrator still `stackops`. The next rotation moves the
    administrator to stackops-b and the services back; and a rotation begun by that stackops (no new
    administrator password beside the old) leaves the administrator as it is to its end."""
    c, values = values_of(ROTATED)
    legacy = RotationState.parse("1/Done/b")
    assert legacy.own_twins == frozenset()
    ctx_jobs = {"nova": find(plan(c, Credentials(values, rotation=legacy)), "Job", "nova", "messaging")}
    assert args(ctx_jobs["nova"])[2] == "--user=nova-b"
    assert env_of(ctx_jobs["nova"])["STACKOPS_MQ_ADMIN_USER"] == "stackops"
    rotated = rotated_credentials(c.spec)
    values, state = begin_rotation(values, legacy, 2, rotated, migrated_keys(c.spec))
    granting = plan(c, Credentials(values, rotation=state))
    assert args(find(granting, "Job", "rabbitmq", "messaging"))[2:] == ["--user=stackops-b"]
    assert args(find(granting, "Job", "nova", "messaging"))[2:4] == ["--user=nova", "--vhost=nova"]
    state = advance_rotation(advance_rotation(state))
    revoking = plan(c, Credentials(values, rotation=state))
    assert args(find(revoking, "Job", "rabbitmq", "messaging"))[2:] == ["--user=stackops-b", "--remove-user=stackops"]
    assert args(find(revoking, "Job", "nova", "messaging"))[-1] == "--remove-user=nova-b"
    values, state = promote_rotation(values, state, migrated_keys(c.spec), rotated)
    assert str(state) == "2/Done/a/rabbitmq-admin-password"
    after = plan(c, Credentials(values, rotation=state))
    assert env_of(find(after, "Job", "nova", "messaging"))["STACKOPS_MQ_ADMIN_USER"] == "stackops-b"
    assert args(find(after, "Job", "nova", "messaging"))[2] == "--user=nova"

    # begun before: no next value for the administrator, whose account and password stay as they are
    c, values = values_of(ROTATED)
    older = [spec for spec in rotated if spec.key != "rabbitmq-admin-password"]
    values, state = begin_rotation(values, RotationState(), 1, older, migrated_keys(c.spec))
    while state.phase is not None:
        rendered = plan(c, Credentials(values, rotation=state))
        assert not any(s.name == "rabbitmq-messaging" for s in rendered.steps)
        job = find(rendered, "Job", "nova", "messaging")
        assert (env_of(job)["STACKOPS_MQ_ADMIN_USER"], env_keys(job)["STACKOPS_MQ_ADMIN_PASSWORD"]) == (
            "stackops",
            "rabbitmq-admin-password",
        )
        if state.phase is REVOKING:
            values, state = promote_rotation(values, state, migrated_keys(c.spec), rotated)
        else:
            state = advance_rotation(state)
    assert state == RotationState(1, None, twins=True)


def env_of(job: dict[str, Any]) -> dict[str, str]:
    """A Job's plain environment (not its Secret files)."""
    return {v["name"]: v["value"] for v in job["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in v}


def test_an_external_brokers_administrator_is_the_users_and_never_rotated() -> None:
    spec = {
        **ROTATED,
        "infrastructure": {"messaging": {"external": {"host": "mq.example.com", "secretRef": {"name": "my-rabbitmq"}}}},
    }
    assert "rabbitmq-admin-password" not in {s.key for s in rotated_credentials(cloud(spec).spec)}
    rendered = phases(spec)
    for p in rendered.values():
        assert not any(o["metadata"]["name"].startswith("demo-rabbitmq") for o in p.objects())
    nova = {name: find(p, "Job", "nova", "messaging") for name, p in rendered.items()}
    for job in nova.values():
        keys = secret_files(job["spec"]["template"]["spec"])
        assert {n: ref for n, ref in keys.items() if "ADMIN" in n} == {
            "STACKOPS_MQ_ADMIN_USER": {"name": "my-rabbitmq", "key": "username"},
            "STACKOPS_MQ_ADMIN_PASSWORD": {"name": "my-rabbitmq", "key": "password"},
        }
    # the service's own user still alternates on the user's broker
    assert args(nova["Revoking"])[2:] == ["--user=nova-b", "--vhost=nova", "--remove-user=nova"]


def test_clients_outside_the_rendering_take_the_admin_password_its_last_bootstrap_job_set() -> None:
    """The operator's own clients and `stackops clouds-yaml` take the password keystone takes: the
    new one once a bootstrap Job that reads it has succeeded; the other one second, during a rotation."""
    c, values = values_of(ROTATED)
    values, state = begin_rotation(values, RotationState(), 1, rotated_credentials(c.spec), migrated_keys(c.spec))
    old, new = values["keystone-admin-password"], values[f"{NEXT_PREFIX}keystone-admin-password"]

    def bootstrap(state: RotationState, succeeded: bool) -> dict[str, Any]:
        job = find(plan(c, Credentials(values, rotation=state)), "Job", "keystone", "bootstrap")
        return {**job, "status": {"succeeded": 1} if succeeded else {"active": 1}}

    granting = Credentials(values, rotation=state)
    assert admin_passwords_in_use(granting, [bootstrap(state, True)]) == (old,)
    rolling_state = advance_rotation(state)
    rolling = Credentials(values, rotation=rolling_state)
    done_before = bootstrap(state, True)  # the Job of the phase before, which set the old one
    assert admin_passwords_in_use(rolling, [done_before, bootstrap(rolling_state, False)]) == (old, new)
    assert admin_passwords_in_use(rolling, [done_before, bootstrap(rolling_state, True)]) == (new, old)
    revoking = Credentials(values, rotation=advance_rotation(rolling_state))
    assert admin_passwords_in_use(revoking, [bootstrap(rolling_state, True)]) == (new, old)
    promoted, done = promote_rotation(values, advance_rotation(rolling_state), migrated_keys(c.spec))
    assert admin_passwords_in_use(Credentials(promoted, rotation=done), []) == (new,)


def test_only_rolling_rolls_the_pods() -> None:
    """The workloads' pod templates change once, when the configs switch; revoking and the
    promotion render the same configs (the Jobs change: they name the keys they set)."""
    rendered = phases(ROTATED)
    names = list(rendered)

    def templates(p: Plan) -> dict[str, Any]:
        kinds = ("Deployment", "StatefulSet", "DaemonSet")
        return {o["metadata"]["name"]: o["spec"]["template"] for o in p.objects() if o["kind"] in kinds}

    changed = {
        after: sorted(n for n, t in templates(rendered[after]).items() if t != templates(rendered[before]).get(n))
        for before, after in itertools.pairwise(names)
    }
    assert changed["Granting"] == [] and changed["Revoking"] == [] and changed["after"] == []
    assert "demo-keystone-api" in changed["Rolling"] and "demo-nova-conductor" in changed["Rolling"]
    assert "demo-heat-engine" in changed["Rolling"]  # its database and RabbitMQ passwords
    assert not any(n.startswith(("demo-mariadb", "demo-rabbitmq", "demo-memcached")) for n in changed["Rolling"])


def test_a_cloud_never_rotated_renders_as_before_and_the_same_twice() -> None:
    c, values = values_of(ROTATED)
    once = to_yaml(plan(c, Credentials(values, rotation=RotationState())).objects())
    assert once == to_yaml(plan(c, Credentials(values)).objects())
    rotating = Credentials(values, rotation=RotationState(1, GRANTING))
    assert to_yaml(plan(c, rotating).objects()) == to_yaml(plan(c, rotating).objects())


def secret(c: CloudPasses) -> dict[str, Any]:
    return c.kube.objects[("Secret", "openstack", credentials_secret_name("demo"))]


def decoded(c: CloudPasses) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret(c)["data"].items()}


def test_the_operator_takes_a_rotation_from_the_spec_to_its_end() -> None:
    c = CloudPasses({"release": "2026.1", **copy.deepcopy(SMALL)})
    assert c.converge().current is None
    assert "credentialRotation" not in c.status
    before = decoded(c)
    c.spec["credentialRotation"] = {"generation": 1}
    c.reconcile()  # begins, and applies the first phase's Jobs in the same pass
    assert secret(c)["metadata"]["annotations"][ROTATION_ANNOTATION] == "1/Granting/a"
    assert c.status["credentialRotation"] == {"generation": 1, "phase": "Granting"}
    assert f"{NEXT_PREFIX}placement-database-password" in decoded(c)
    seen: list[str] = []
    for _ in range(60):  # a phase takes a pass per step that waits
        phase = c.status["credentialRotation"]["phase"]
        if phase == "Done":
            break
        if phase not in seen:
            seen.append(phase)
        c.kube.settle()
        c.reconcile()
    assert seen == ["Granting", "Rolling", "Revoking"]
    assert secret(c)["metadata"]["annotations"][ROTATION_ANNOTATION] == "1/Done/b/rabbitmq-admin-password"
    after = decoded(c)
    assert not any(k.startswith(NEXT_PREFIX) for k in after)
    assert after["placement-database-password"] != before["placement-database-password"]
    assert after["keystone-admin-password"] != before["keystone-admin-password"]
    assert after["mariadb-root-password"] != before["mariadb-root-password"]
    assert after["rabbitmq-admin-password"] != before["rabbitmq-admin-password"]
    # no credential in the status
    assert not any(v in str(c.status) for v in after.values())
    c.kube.settle()
    assert c.converge().current is None and c.status["phase"] == "Ready"
    assert c.status["credentialRotation"] == {"generation": 1, "phase": "Done"}


def test_a_failed_step_stops_a_rotation_in_its_phase_with_the_reason() -> None:
    c = CloudPasses({"release": "2026.1", **copy.deepcopy(SMALL)})
    assert c.converge().current is None
    c.spec["credentialRotation"] = {"generation": 1}
    failed = c.converge(fail="demo-placement-database").current
    assert failed is not None and failed.state == "Failed"
    assert c.condition("Degraded")["reason"] == "CredentialRotationFailed"
    assert "placement-database" in c.condition("Degraded")["message"]
    assert c.status["credentialRotation"] == {"generation": 1, "phase": "Granting"}  # not further
