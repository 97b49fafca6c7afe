"""Rendering choices of cinder, heat and horizon: where volume services run and under which host name,
which objects backup adds, heat's two catalog entries and its domain Job, horizon's settings."""

from __future__ import annotations

import ast
import configparser
import json
import subprocess
import sys
from typing import Any

import pytest

from stackops.credentials import Credentials
from stackops.plan import Plan, plan, required_credentials
from stackops.services.base import RenderError
from tests.conftest import cloud
from tests.support.rendered import cloud_credentials, find, secret_data, secret_files

RBD = {"name": "ceph", "type": "rbd", "rbd": {"pool": "volumes", "user": "cinder", "secretRef": {"name": "ceph-c"}}}
NFS = {"name": "filer", "type": "nfs", "nfs": {"shares": ["f.example:/a", "f.example:/b"], "mountOptions": "vers=4.2"}}
LVM = {"name": "lvm", "type": "lvm", "lvm": {"volumeGroup": "vg-cinder"}}


def objects(result: Plan, service: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["kind"], o["metadata"]["labels"]["app.kubernetes.io/component"]): o
        for o in result.objects()
        if o["metadata"]["labels"]["app.kubernetes.io/name"] == service
    }


def ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def container(workload: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return first


def config_json(result: Plan, workload: dict[str, Any]) -> dict[str, Any]:
    volume = workload["spec"]["template"]["spec"]["volumes"][0]
    items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
    loaded: dict[str, Any] = json.loads(secret_data(result, volume["secret"]["secretName"])[items["config.json"]])
    return loaded


def cinder(**spec: Any) -> Plan:
    return plan(cloud({"services": {"cinder": spec}}))


# cinder


def test_lvm_volumes_run_on_every_storage_node_named_after_the_node() -> None:
    result = plan(cloud({"nodes": {"storage": {"matchLabels": {"disks": "ssd"}}}}))
    found = objects(result, "cinder")
    assert ("Deployment", "volume") not in found
    daemonset = found[("DaemonSet", "volume-lvm")]
    pod = daemonset["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "disks", "operator": "In", "values": ["ssd"]}]}]
    assert pod["hostNetwork"] is True  # the iSCSI target listens on the node's address
    volume = container(daemonset)
    assert volume["securityContext"] == {"privileged": True}
    env = {e["name"]: e.get("valueFrom", e.get("value")) for e in volume["env"]}
    assert env["OS_DEFAULT__HOST"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["OS_DEFAULT__MY_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    host_paths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert {"/dev", "/run/lock/lvm", "/etc/target", "/sys/kernel/config", "/var/lib/cinder"} <= host_paths
    assert volume["readinessProbe"]["exec"]["command"] == ["healthcheck_port", "cinder-volume", "5672"]
    files = secret_data(result, "demo-cinder-config")
    assert ini(files["cinder-volume-lvm.conf"])["DEFAULT"]["enabled_backends"] == "lvm"
    assert "host" not in ini(files["cinder-volume-lvm.conf"])["DEFAULT"]
    lvm = ini(files["cinder.conf"])["lvm"]
    assert (lvm["volume_driver"], lvm["volume_group"], lvm["target_helper"]) == (
        "cinder.volume.drivers.lvm.LVMVolumeDriver",
        "cinder-volumes",
        "lioadm",
    )
    assert config_json(result, daemonset)["command"] == (
        "cinder-volume --config-file /etc/cinder/cinder.conf --config-file /etc/cinder/cinder-volume-lvm.conf"
    )


def test_rbd_and_nfs_volumes_run_in_one_pod_with_a_fixed_host_name() -> None:
    result = cinder(backends=[RBD, NFS])
    found = objects(result, "cinder")
    assert ("DaemonSet", "volume-lvm") not in found
    deployment = found[("Deployment", "volume")]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two volume services with one name
    assert ("PodDisruptionBudget", "volume") not in found
    assert container(deployment)["securityContext"] == {"privileged": True}  # it mounts the NFS shares
    files = secret_data(result, "demo-cinder-config")
    overlay = ini(files["cinder-volume.conf"])["DEFAULT"]
    assert (overlay["enabled_backends"], overlay["host"]) == ("ceph,filer", "cinder-volume")
    conf = ini(files["cinder.conf"])
    assert conf["ceph"]["rbd_ceph_conf"] == "/etc/ceph/ceph.conf" and conf["ceph"]["rbd_cluster_name"] == "ceph"
    assert conf["filer"]["nfs_shares_config"] == "/etc/cinder/nfs-shares-filer"
    assert conf["filer"]["nfs_mount_options"] == "vers=4.2"
    assert files["nfs-shares-filer"] == "f.example:/a\nf.example:/b\n"
    assert {f["dest"] for f in config_json(result, deployment)["config_files"]} == {
        "/etc/cinder/cinder.conf",
        "/etc/cinder/cinder-volume.conf",
        "/etc/cinder/nfs-shares-filer",
        "/etc/cinder/ca.crt",
    }
    # the Ceph client Secret, as the files librados looks for when told the cluster's name
    ceph = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "ceph")
    assert ceph["projected"]["sources"] == [
        {
            "secret": {
                "name": "ceph-c",
                "items": [
                    {"key": "ceph.conf", "path": "ceph.conf"},
                    {"key": "keyring", "path": "ceph.client.cinder.keyring"},
                ],
            }
        }
    ]


def test_an_rbd_only_volume_service_is_not_privileged() -> None:
    deployment = objects(cinder(backends=[RBD]), "cinder")[("Deployment", "volume")]
    assert "securityContext" not in container(deployment)


def test_lvm_and_shared_backends_each_get_their_own_volume_service() -> None:
    result = cinder(backends=[LVM, RBD])
    found = objects(result, "cinder")
    assert ("DaemonSet", "volume-lvm") in found and ("Deployment", "volume") in found
    files = secret_data(result, "demo-cinder-config")
    assert ini(files["cinder-volume-lvm.conf"])["DEFAULT"]["enabled_backends"] == "lvm"
    assert ini(files["cinder-volume.conf"])["DEFAULT"]["enabled_backends"] == "ceph"
    assert ini(files["cinder.conf"])["lvm"]["volume_group"] == "vg-cinder"
    assert "enabled_backends" not in ini(files["cinder.conf"])["DEFAULT"]


def test_backup_is_off_by_default_and_adds_its_service_when_enabled() -> None:
    assert ("Deployment", "backup") not in objects(plan(cloud()), "cinder")
    assert "cinder-backup.conf" not in secret_data(plan(cloud()), "demo-cinder-config")

    nfs = cinder(replicas=2, backup={"enabled": True, "nfs": {"shares": ["f.example:/backup"]}})
    found = objects(nfs, "cinder")
    backup = found[("Deployment", "backup")]
    assert backup["spec"]["replicas"] == 2 and ("PodDisruptionBudget", "backup") in found
    assert container(backup)["securityContext"] == {"privileged": True}
    overlay = ini(secret_data(nfs, "demo-cinder-config")["cinder-backup.conf"])["DEFAULT"]
    assert overlay["backup_driver"] == "cinder.backup.drivers.nfs.NFSBackupDriver"
    assert (overlay["backup_share"], overlay["host"]) == ("f.example:/backup", "cinder-backup")

    rbd = cinder(
        backup={"enabled": True, "type": "rbd", "rbd": {"pool": "backups", "user": "bk", "secretRef": {"name": "s"}}}
    )
    backup = objects(rbd, "cinder")[("Deployment", "backup")]
    assert "securityContext" not in container(backup)
    overlay = ini(secret_data(rbd, "demo-cinder-config")["cinder-backup.conf"])["DEFAULT"]
    assert (overlay["backup_ceph_conf"], overlay["backup_ceph_user"], overlay["backup_ceph_pool"]) == (
        "/etc/ceph/ceph.conf",
        "bk",
        "backups",
    )
    ceph = next(v for v in backup["spec"]["template"]["spec"]["volumes"] if v["name"] == "ceph")
    assert ceph["projected"]["sources"][0]["secret"]["items"][1] == {"key": "keyring", "path": "ceph.client.bk.keyring"}


def test_cinder_registers_block_storage_with_versioned_urls() -> None:
    result = plan(cloud({"endpoints": {"publicDomain": "cloud.example"}}))
    job = find(result, "Job", "cinder", "registration")
    args = container(job)["args"]
    assert "--type=block-storage" in args
    assert "--public-url=http://cinder.cloud.example/v3" in args
    assert "--internal-url=https://demo-cinder-api.openstack.svc:8776/v3" in args
    assert result.endpoints["block-storage"] == "http://cinder.cloud.example/v3"
    assert find(result, "Ingress", "cinder", "api")["spec"]["rules"][0]["host"] == "cinder.cloud.example"


def test_cinder_runs_after_keystone_and_rabbitmq_and_syncs_after_its_user_exists() -> None:
    steps = [s.name for s in plan(cloud()).steps]
    assert steps.index("keystone-api") < steps.index("cinder-database")
    assert steps.index("rabbitmq-server") < steps.index("cinder-messaging") < steps.index("cinder-db-sync")
    assert steps.index("cinder-registration") < steps.index("cinder-api") < steps.index("cinder-volume-lvm")


# heat


def test_heat_registers_two_catalog_services_as_one_user() -> None:
    result = plan(cloud({"endpoints": {"publicDomain": "cloud.example"}}))
    native = container(find(result, "Job", "heat", "registration"))["args"]
    cfn = container(find(result, "Job", "heat", "registration-heat-cfn"))["args"]
    assert {"--type=orchestration", "--name=heat", "--user=heat"} <= set(native)
    assert "--public-url=http://heat.cloud.example/v1/%(project_id)s" in native
    assert {"--type=cloudformation", "--name=heat-cfn", "--user=heat"} <= set(cfn)
    assert "--public-url=http://heat-cfn.cloud.example/v1" in cfn
    assert "--internal-url=https://demo-heat-api-cfn.openstack.svc:8000/v1" in cfn
    hosts = {o["spec"]["rules"][0]["host"] for o in result.objects() if o["kind"] == "Ingress"}
    assert {"heat.cloud.example", "heat-cfn.cloud.example"} <= hosts
    # instances call the CloudFormation API back at its public address
    conf = ini(secret_data(result, "demo-heat-config")["heat.conf"])["DEFAULT"]
    assert conf["heat_waitcondition_server_url"] == "http://heat-cfn.cloud.example/v1/waitcondition"
    # other services keep their one registration Job under its usual name
    assert find(result, "Job", "placement", "registration")["metadata"]["name"].startswith(
        "demo-placement-registration-"
    )


def test_heat_stack_domain_job_takes_every_password_from_the_credentials_secret() -> None:
    result = plan(cloud())
    pod = find(result, "Job", "heat", "stack-domain")["spec"]["template"]["spec"]
    job = pod["containers"][0]
    assert job["command"] == ["stackops", "job", "create-domain-admin"]
    assert {"--domain=heat", "--user=heat_domain_admin", "--role=heat_stack_owner", "--role=heat_stack_user"} <= set(
        job["args"]
    )
    assert not [e for e in job["env"] if "valueFrom" in e]  # no value in its environment: files
    assert secret_files(pod) == {
        "OS_CACERT": {"name": "demo-credentials", "key": "tls-ca.crt"},
        "OS_PASSWORD": {"name": "demo-credentials", "key": "keystone-admin-password"},
        "STACKOPS_DOMAIN_ADMIN_PASSWORD": {"name": "demo-credentials", "key": "heat-domain-admin-password"},
    }
    steps = [s.name for s in result.steps]
    assert steps.index("heat-registration") < steps.index("heat-stack-domain") < steps.index("heat-api")


def test_heat_conf_names_its_domain_and_encryption_key() -> None:
    creds = Credentials(cloud_credentials(cloud()))
    conf = ini(secret_data(plan(cloud(), creds), "demo-heat-config")["heat.conf"])["DEFAULT"]
    assert (conf["stack_user_domain_name"], conf["stack_domain_admin"]) == ("heat", "heat_domain_admin")
    assert conf["stack_domain_admin_password"] == creds["heat-domain-admin-password"]
    assert len(conf["auth_encryption_key"]) == 32  # an AES-256 key


def test_create_domain_admin_without_its_environment_is_a_usage_error() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackops.cli",
            "job",
            "create-domain-admin",
            *("--region", "R", "--domain", "d", "--user", "u"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "environment: neither STACKOPS_DOMAIN_ADMIN_PASSWORD nor STACKOPS_DOMAIN_ADMIN_PASSWORD_FILE is set" in (
        result.stderr
    )


# horizon


# the one statement before the settings: Django's MySQL backend through PyMySQL
DRIVER_PRELUDE = ["import pymysql", "pymysql.install_as_MySQLdb()"]


def settings_of(text: str) -> dict[str, Any]:
    """local_settings.py read as data: after the driver's prelude, it must be assignments of
    literals and nothing else."""
    values: dict[str, Any] = {}
    body = ast.parse(text).body
    assert [ast.unparse(node) for node in body[: len(DRIVER_PRELUDE)]] == DRIVER_PRELUDE
    for node in body[len(DRIVER_PRELUDE) :]:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        target = node.targets[0]
        assert isinstance(target, ast.Name)
        values[target.id] = ast.literal_eval(node.value)
    return values


def local_settings(spec: dict[str, Any]) -> str:
    return secret_data(plan(cloud(spec)), "demo-horizon-config")["local_settings.py"]


def test_horizon_settings_override_the_defaults_and_add_to_them() -> None:
    default = settings_of(local_settings({}))
    assert default["OPENSTACK_KEYSTONE_URL"] == "https://demo-keystone-api.openstack.svc:5000/v3"
    # sessions in horizon's own database, as its account; nothing in memcached
    assert default["SESSION_ENGINE"] == "django.contrib.sessions.backends.db"
    assert default["DATABASES"]["default"] == {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "horizon",
        "USER": "horizon",
        "PASSWORD": "PLACEHOLDER-horizon-database-password",
        "HOST": "demo-mariadb.openstack.svc",
        "PORT": 3306,
        # PyMySQL verifies the server's certificate and name against the cloud's CA
        "OPTIONS": {"ssl": {"ca": "/etc/openstack-dashboard/ca.crt"}},
    }
    assert default["CACHES"] == {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert "demo-memcached" not in local_settings({})
    assert default["SECRET_KEY"] == "PLACEHOLDER-horizon-secret-key"
    custom = settings_of(
        local_settings({"services": {"horizon": {"settings": {"DEBUG": True, "SESSION_TIMEOUT": 600}}}})
    )
    assert custom["DEBUG"] is True and custom["SESSION_TIMEOUT"] == 600
    assert {k: v for k, v in custom.items() if k not in ("DEBUG", "SESSION_TIMEOUT")} == {
        k: v for k, v in default.items() if k != "DEBUG"
    }


def test_horizon_settings_render_the_same_whatever_their_order() -> None:
    nested = {"b": [3, {"y": 1, "x": None}], "a": 'it\'s "quoted"', "c": 1.5}
    first = local_settings({"services": {"horizon": {"settings": {"ZED": nested, "ALPHA": {"k": True}}}}})
    reordered = dict(reversed(list(nested.items())))
    second = local_settings({"services": {"horizon": {"settings": {"ALPHA": {"k": True}, "ZED": reordered}}}})
    assert first == second
    assert settings_of(first)["ZED"] == nested
    assert first.index("ALPHA = ") < first.index("ZED = ")


def test_horizon_public_endpoint_and_secure_cookies_behind_tls() -> None:
    spec = {"endpoints": {"publicDomain": "cloud.example", "tls": {"secretName": "tls"}}}
    result = plan(cloud(spec))
    assert result.endpoints["dashboard"] == "https://horizon.cloud.example/"
    ingress = find(result, "Ingress", "horizon", "dashboard")
    assert ingress["spec"]["rules"][0]["host"] == "horizon.cloud.example"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "demo-horizon-dashboard"
    settings = settings_of(secret_data(result, "demo-horizon-config")["local_settings.py"])
    assert settings["CSRF_TRUSTED_ORIGINS"] == ["https://horizon.cloud.example"]
    assert settings["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert "CSRF_TRUSTED_ORIGINS" not in settings_of(local_settings({}))


def test_horizon_creates_its_database_and_session_table_before_the_dashboard_starts() -> None:
    result = plan(cloud())
    steps = [s.name for s in result.steps if s.service == "horizon"]
    assert steps == [
        "horizon-network-policy",
        "horizon-config",
        "horizon-database",
        "horizon-db-sync",
        "horizon-dashboard",
    ]
    database = container(find(result, "Job", "horizon", "database"))
    assert "--database=horizon" in database["args"] and "--user=horizon" in database["args"]
    sync = find(result, "Job", "horizon", "db-sync")
    assert config_json(result, sync)["command"] == (
        "django-admin migrate sessions --noinput --settings openstack_dashboard.settings"
    )
    # the Job migrates and ends: the dashboard's start step (collecting static files) is not its
    assert {"name": "KOLLA_SKIP_EXTEND_START", "value": "true"} in container(sync)["env"]
    # with the dashboard's own settings: the same file of the same config Secret
    dashboard = find(result, "Deployment", "horizon", "dashboard")
    assert (
        sync["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"]
        == (dashboard["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"])
    )


def test_horizon_is_one_probed_deployment_with_a_disruption_budget() -> None:
    found = objects(plan(cloud({"services": {"horizon": {"replicas": 2}}})), "horizon")
    deployment = found[("Deployment", "dashboard")]
    assert deployment["spec"]["replicas"] == 2
    assert container(deployment)["readinessProbe"]["httpGet"]["path"] == "/auth/login/"
    assert container(deployment)["resources"]["requests"] == {"cpu": "25m", "memory": "512Mi"}
    assert ("PodDisruptionBudget", "dashboard") in found and ("Service", "dashboard") in found


@pytest.mark.parametrize(
    ("services", "off"),
    [
        ({name: {"enabled": False} for name in ("cinder", "heat", "horizon")}, ("cinder", "heat", "horizon")),
        ({}, ("barbican", "designate", "octavia")),  # a service stackops gained later: off unless a spec turns it on
    ],
    ids=["turned-off", "off-by-default"],
)
def test_disabled_services_render_nothing_and_need_no_credentials(
    services: dict[str, Any], off: tuple[str, ...]
) -> None:
    result = plan(cloud({"services": services}))
    assert not [o for o in result.objects() if o["metadata"]["labels"]["app.kubernetes.io/name"] in off]
    keys = {c.key for c in required_credentials(cloud({"services": services}).spec)}
    assert not {k for k in keys if k.split("-")[0] in off}


def test_cinder_spec_mistakes_name_their_field() -> None:
    with pytest.raises(RenderError) as caught:
        plan(cloud({"nodes": {"storage": {"matchLabels": {}}}}))
    assert caught.value.field == "spec.nodes.storage.matchLabels"
    with pytest.raises(RenderError) as caught:
        cinder(backup={"enabled": True, "nfs": {"shares": ["a:/x", "b:/y"]}})
    assert str(caught.value) == "spec.services.cinder.backup.nfs.shares: backups go to exactly one share"
    # without lvm backends, no storage node is needed
    assert plan(cloud({"nodes": {"storage": {"matchLabels": {}}}, "services": {"cinder": {"backends": [RBD]}}}))
