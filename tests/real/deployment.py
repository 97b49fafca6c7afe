"""A rendered cloud, deployed here for real step by step as the operator would, against MariaDB and
OpenStack services from PyPI.

Nothing is re-implemented: stackops Jobs run `stackops job ...` with the arguments and environment
of the rendered Job; Kolla Jobs run the command of their rendered config.json with the rendered
config files; APIs serve the WSGI module the rendered Apache config points at, with the rendered
config. What differs is only where files are: config files sit under a temporary root, and key
repositories (an absolute path inside keystone.conf) are named by a small overlay config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from stackops.credentials import Credentials
from stackops.devcluster import processes
from stackops.devcluster.cluster import free_ports
from stackops.plan import Plan, plan
from stackops.services import identity, keystone
from stackops.services.base import CloudContext, Step
from stackops.upgrade.plan import UpgradePlan, at_release, plan_upgrade
from tests.conftest import cloud
from tests.support.commands import run
from tests.support.mariadb import MariaDB
from tests.support.rabbitmq import RabbitMQ
from tests.support.rendered import KollaRun, cloud_credentials, find, job_env, kolla_run, secret_data

STACKOPS = str(Path(sys.executable).with_name("stackops"))
KEYSTONE_CONF = keystone.CONFIG.dest
# No memcached here: the caches are turned off with the same `config:` overrides a user writes, and
# their TLS options with them (over internal TLS the clients make their ssl context when they start,
# from the cloud's CA at its path in the containers, which processes run here do not have).
NO_TOKEN_CACHE = {"memcached_servers": None, "memcache_tls_enabled": None, "memcache_tls_cafile": None}
NO_CACHE = {"enabled": False, "tls_enabled": None, "tls_cafile": None}


SERVED = (
    "keystone", "placement", "glance", "nova", "neutron", "cinder", "heat", "horizon", "barbican", "designate",
    "octavia", "swift", "manila", "gnocchi", "aodh",
)  # fmt: skip
# Services whose processes read their files at the paths the containers have them, whatever their
# command line says: barbican's (its crypto plugin and `barbican-manage` read /etc/barbican/barbican.conf,
# its WSGI script its paste pipeline there), designate's (pools.yaml names rndc's key file by its path),
# octavia's (its WSGI module reads /etc/octavia/octavia.conf, as oslo.config finds it by default),
# swift's (every process reads /etc/swift/swift.conf), gnocchi's, aodh's and ceilometer's (their
# WSGI modules, paste filters and agents read /etc/<service>/<service>.conf), manila's (its WSGI module reads
# /etc/manila/manila.conf, its privsep helper is started through /etc/manila/rootwrap.conf). They run
# with /etc overlaid (container_paths).
AT_CONTAINER_PATHS = ("barbican", "designate", "octavia", "swift", "manila", "gnocchi", "aodh", "ceilometer")
# swift's storage node on a loopback address of its own, its servers on swift's ports there
SWIFT_STORAGE_IP = "127.0.97.1"


SWIFT_DEVICES = ("d1", "d2", "d3")

# manila's volume group, on a loop device the manila test makes: of this session alone
MANILA_VOLUME_GROUP = f"stackops-manila-{os.getpid()}"
# the storage node manila's share service runs on here
STORAGE_NODE = "stackops-storage"

# what the kubelet would put in a container's environment, for processes run here on loopback
# (glance's worker URL, nova-compute's my_ip, manila's share host and export address)
LOCAL_FIELDS = {"status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1", "spec.nodeName": STORAGE_NODE}
SECURITY_COMPLIANCE: dict[str, Any] = {
    "lockoutFailureAttempts": 3,
    "lockoutDurationSeconds": 5,
    "passwordRegex": r"^(?=.*\d)(?=.*[a-z])(?=.*[A-Z]).{12,}$",
    "passwordRegexDescription": "at least 12 characters with a digit, a lowercase and an uppercase letter",
}
# an auditor reads what a reader reads, except the list of projects
KEYSTONE_POLICY = {
    "identity:list_projects": "rule:admin_required or (role:reader and system_scope:all) or "
    "(role:reader and domain_id:%(target.domain_id)s and not role:auditor)"
}


class Deployment:
    def __init__(self, db: MariaDB, mq: RabbitMQ, root: Path) -> None:
        self.ports = dict(zip(SERVED, free_ports(len(SERVED)), strict=True))
        images = root / "glance"
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        state = root / "nova-state"
        # No memcached here (NO_TOKEN_CACHE, NO_CACHE).
        spec = {
            "infrastructure": {
                "database": {"external": {"host": db.host, "port": db.port, "secretRef": {"name": "db-admin"}}},
                "messaging": {
                    "external": {
                        "host": mq.host,
                        "port": mq.port,
                        "managementPort": mq.management_port,
                        "secretRef": {"name": "mq-admin"},
                    }
                },
            },
            "services": {
                "keystone": {
                    "endpoints": {"public": self.urls["keystone"], "internal": self.urls["keystone"]},
                    "config": {"cache": NO_CACHE},
                    # what an audit asks for, and a custom role's policy (tests/real/test_policy.py)
                    "securityCompliance": SECURITY_COMPLIANCE,
                    "policy": KEYSTONE_POLICY,
                },
                "placement": {
                    "endpoints": {"public": self.urls["placement"], "internal": self.urls["placement"]},
                    "config": {"keystone_authtoken": NO_TOKEN_CACHE},
                },
                # the static files the dashboard collects when it starts, here (the image's
                # site-packages/static is not writable in the cached virtualenv)
                "horizon": {"settings": {"STATIC_ROOT": str(root / "horizon" / "static")}},
                # off by default: on here, neutron publishes its DNS names there
                "designate": {
                    "enabled": True,
                    "endpoints": {"public": self.urls["designate"], "internal": self.urls["designate"]},
                    "config": {
                        "keystone_authtoken": NO_TOKEN_CACHE,
                        "oslo_concurrency": {"lock_path": str(root / "designate-state" / "tmp")},
                        # the mini DNS on loopback only, where the tests' BIND transfers zones from
                        "service:mdns": {"listen": "127.0.0.1:5354"},
                    },
                },
                "glance": {
                    "endpoints": {"public": self.urls["glance"], "internal": self.urls["glance"]},
                    # a second store, and the import that copies images between stores
                    "stores": [{"name": "second", "description": "the second store"}],
                    "importMethods": ["glance-direct", "copy-image"],
                    "imageCache": {"enabled": True, "maxSizeGiB": 1},
                    # the stores on local directories instead of the PVCs mounted at /var/lib/glance*
                    "config": {
                        "keystone_authtoken": NO_TOKEN_CACHE,
                        "DEFAULT": {"image_cache_dir": str(images / "cache")},
                        "file": {"filesystem_store_datadir": str(images / "images")},
                        "second": {"filesystem_store_datadir": str(images / "second")},
                        "os_glance_staging_store": {"filesystem_store_datadir": str(images / "staging")},
                        "os_glance_tasks_store": {"filesystem_store_datadir": str(images / "tasks")},
                    },
                },
                "nova": {
                    "endpoints": {"public": self.urls["nova"], "internal": self.urls["nova"]},
                    "config": {
                        "DEFAULT": {"state_path": str(state)},
                        "cache": NO_CACHE,
                        "keystone_authtoken": NO_TOKEN_CACHE,
                        "oslo_concurrency": {"lock_path": str(state / "tmp")},
                        # new hypervisors are found within seconds here, not the default minute
                        "scheduler": {"discover_hosts_in_cells_interval": 2},
                    },
                    # a hypervisor without libvirt: nova's fake driver reports resources all the same
                    "compute": {
                        "config": {"DEFAULT": {"compute_driver": "fake.FakeDriver"}, "vnc": {"enabled": False}}
                    },
                },
                "neutron": {
                    "endpoints": {"public": self.urls["neutron"], "internal": self.urls["neutron"]},
                    "config": {
                        "DEFAULT": {"state_path": str(root / "neutron-state")},
                        "keystone_authtoken": NO_TOKEN_CACHE,
                        "oslo_concurrency": {"lock_path": str(root / "neutron-state" / "tmp")},
                    },
                },
                "cinder": {
                    "endpoints": {"public": self.urls["cinder"], "internal": self.urls["cinder"]},
                    "config": {
                        "DEFAULT": {"state_path": str(root / "cinder-state")},
                        "keystone_authtoken": NO_TOKEN_CACHE,
                        "oslo_concurrency": {"lock_path": str(root / "cinder-state" / "tmp")},
                    },
                },
                "heat": {
                    "endpoints": {"public": self.urls["heat"], "internal": self.urls["heat"]},
                    "config": {
                        "cache": NO_CACHE,
                        "keystone_authtoken": NO_TOKEN_CACHE,
                        "oslo_concurrency": {"lock_path": str(root / "heat-state" / "tmp")},
                    },
                },
                # off by default: on here, one storage node of three devices (directories here, as
                # hostPath devices are), its servers on a loopback address of their own
                "swift": {
                    "enabled": True,
                    "endpoints": {"public": self.urls["swift"], "internal": self.urls["swift"]},
                    "nodes": [
                        {"node": "storage-a", "devices": [{"name": d, "hostPath": f"/srv/{d}"} for d in SWIFT_DEVICES]}
                    ],
                    "config": {
                        "DEFAULT": {
                            "bind_ip": "127.0.0.1",
                            "bind_port": self.ports["swift"],
                            # plaintext here, as behind a TLS terminator: the tests reach it at
                            # 127.0.0.1, which its certificate does not name (its TLS:
                            # test_swift.py, test_the_proxy_serves_tls_only_with_its_certificate)
                            "cert_file": None,
                            "key_file": None,
                            "user": "root",
                        },
                        "filter:authtoken": NO_TOKEN_CACHE,
                        # no memcached here: swift's cache filter finds nobody on a closed port
                        "filter:cache": {"memcache_servers": f"127.0.0.1:{free_ports(1)[0]}"},
                    },
                    "servers": {
                        "config": {
                            "DEFAULT": {
                                "bind_ip": SWIFT_STORAGE_IP,
                                "user": "root",
                                "devices": str(root / "swift-devices"),
                            },
                            # the pod's state volume (the replicator writes its stats there)
                            "object-replicator": {"recon_cache_path": str(root / "swift-state")},
                        }
                    },
                },
                # off by default: on here, keystone sends its notifications to barbican's listener
                "barbican": {
                    "enabled": True,
                    "endpoints": {"public": self.urls["barbican"], "internal": self.urls["barbican"]},
                    "config": {"keystone_authtoken": NO_TOKEN_CACHE},
                },
                # off by default: on here, its LVM backend on a loop device, exported on loopback
                "manila": {
                    "enabled": True,
                    "endpoints": {"public": self.urls["manila"], "internal": self.urls["manila"]},
                    "lvm": {"volumeGroup": MANILA_VOLUME_GROUP},
                    "config": {
                        "DEFAULT": {"state_path": str(root / "manila-state")},
                        "keystone_authtoken": NO_TOKEN_CACHE,
                        "oslo_concurrency": {"lock_path": str(root / "manila-state" / "tmp")},
                    },
                },
                # off by default: on here, its storage in a directory of the test's, metricd looking
                # for new measures every second
                "gnocchi": {
                    "enabled": True,
                    "endpoints": {"public": self.urls["gnocchi"], "internal": self.urls["gnocchi"]},
                    "config": {
                        "keystone_authtoken": NO_TOKEN_CACHE,
                        "storage": {"file_basepath": str(root / "gnocchi-storage")},
                        "metricd": {"metric_processing_delay": 1},
                    },
                },
                # off by default: on here, its evaluator looking at its alarms every 2 seconds
                "aodh": {
                    "enabled": True,
                    "endpoints": {"public": self.urls["aodh"], "internal": self.urls["aodh"]},
                    "config": {
                        "keystone_authtoken": NO_TOKEN_CACHE,
                        "evaluator": {"evaluation_interval": 2},
                    },
                },
                # off by default: on here, glance, nova, cinder and designate send it their notifications
                "ceilometer": {"enabled": True},
                # off by default: on here with its OVN provider, on the neutron and OVN the tests run
                "octavia": {
                    "enabled": True,
                    "endpoints": {"public": self.urls["octavia"], "internal": self.urls["octavia"]},
                    "config": {"keystone_authtoken": NO_TOKEN_CACHE},
                },
            },
        }
        self.cloud = cloud(spec)
        self.credentials = Credentials(cloud_credentials(self.cloud))
        self.plan: Plan = plan(self.cloud, self.credentials)
        self.secrets = {
            "demo-credentials": self.credentials.values(),
            "db-admin": {"username": db.root_user, "password": db.root_password},
            "mq-admin": {"username": mq.admin[0], "password": mq.admin[1]},
        }
        self.root = root
        self.keys = {"fernet-keys": root / "fernet-keys", "credential-keys": root / "credential-keys"}
        self.overlay = root / "local-paths.conf"
        self.overlay.write_text(
            f"[fernet_tokens]\nkey_repository = {self.keys['fernet-keys']}\n\n"
            f"[fernet_receipts]\nkey_repository = {self.keys['fernet-keys']}\n\n"
            f"[credential]\nkey_repository = {self.keys['credential-keys']}\n"
        )
        for name in self.keys:
            self.write_keys(name, secret_data(self.plan, f"demo-keystone-{name}"))

    def connect(
        self, user: str = "admin", password_key: str = identity.ADMIN_PASSWORD_KEY, project: str = "admin"
    ) -> Any:
        """openstacksdk as `user`, authenticating at keystone and finding everything else in the catalog."""
        import openstack

        return openstack.connect(
            auth_url=f"{self.urls['keystone']}/v3",
            username=user,
            password=self.credentials[password_key],
            project_name=project,
            user_domain_name="Default",
            project_domain_name="Default",
            region_name="RegionOne",
        )

    def context(self) -> CloudContext:
        """The cloud's rendering context: what service modules derive names and URLs from."""
        meta = self.cloud.metadata
        return CloudContext(meta.name, meta.namespace, self.cloud.spec, self.credentials)

    def write_keys(self, name: str, keys: dict[str, str]) -> None:
        """A key repository as the Secret volume shows it: one file per key, nothing else, replaced
        at once (the kubelet swaps a symbolic link), so a running keystone never sees it half made."""
        link = self.keys[name]
        version = len(list(self.root.glob(f"{name}.*")))
        directory = self.root / f"{name}.{version}"
        directory.mkdir(mode=0o700)
        for index, key in keys.items():
            (directory / index).write_text(key)
            (directory / index).chmod(0o600)
        swap = self.root / f"{name}.link"
        swap.unlink(missing_ok=True)
        swap.symlink_to(directory.name)
        swap.replace(link)

    def use_credentials(self, credentials: Credentials) -> None:
        """Render the cloud with `credentials` from now on (a rotation's phases), the key
        repositories as its Secrets have them."""
        self.credentials = credentials
        self.plan = plan(self.cloud, credentials)
        self.secrets["demo-credentials"] = credentials.values()
        for name in self.keys:
            self.write_keys(name, secret_data(self.plan, f"demo-keystone-{name}"))

    def stackops_job(self, service: str, component: str, secrets: dict[str, dict[str, str]] | None = None) -> Any:
        """Run a stackops Job's container command (create-database, register-service) here."""
        pod = find(self.plan, "Job", service, component)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["command"][0] == "stackops"
        argv = [STACKOPS, *container["command"][1:], *container["args"]]
        return run(argv, job_env(pod, secrets or self.secrets, self.root / "jobs" / f"{service}-{component}"))

    def kolla(self, kind: str, service: str, component: str, container: str | None = None) -> KollaRun:
        workload = find(self.plan, kind, service, component)
        return kolla_run(self.plan, workload, self.root, self.secrets, container, LOCAL_FIELDS)

    def _local_paths(self, service: str, component: str, bin_dir: Path) -> tuple[str, Path] | None:
        """For a Job whose config names paths that are elsewhere outside the image: the config file its
        command reads, and an overlay config naming them here."""
        if service == "keystone":  # keystone.conf names the key repositories by absolute path
            return KEYSTONE_CONF, self.overlay
        if (service, component) == ("glance", "metadefs"):  # the image's /etc/glance/metadefs is the package's
            overlay = self.root / "glance-metadefs.conf"
            overlay.write_text(f"[DEFAULT]\nmetadata_source_path = {bin_dir.parent / 'etc' / 'glance' / 'metadefs'}\n")
            return "/etc/glance/glance-api.conf", overlay
        return None

    def kolla_job(self, service: str, component: str, bin_dir: Path) -> subprocess.CompletedProcess[str]:
        run_ = self.kolla("Job", service, component)
        argv = run_.argv
        local = self._local_paths(service, component, bin_dir)
        if local is not None:
            conf, overlay = local
            index = argv.index(str(run_.files[conf]))
            argv = [*argv[: index + 1], "--config-file", str(overlay), *argv[index + 1 :]]
        if service in AT_CONTAINER_PATHS:
            argv = [*self.container_paths(run_, f"{service}-{component}"), *in_container(run_)]
        return run(argv, run_.env, bin_dir)

    def container_paths(
        self, run_: KollaRun, name: str, extra: dict[str, Path] | None = None, volumes: Sequence[str] = ()
    ) -> list[str]:
        """A wrapper that runs a command in a mount namespace of its own, where /etc is overlaid with
        the files of `run_` under /etc at their paths in the container, and `extra` (container path ->
        file here: what the image ships, or a file of the test's); `volumes` are directories of the
        machine that the command sees empty and its own, as a pod sees its volume there. The machine's
        /etc and those directories are left as they are."""
        overlay = self.root / "overlays" / name
        shutil.rmtree(overlay, ignore_errors=True)
        upper, work = overlay / "upper", overlay / "work"
        work.mkdir(parents=True)
        for dest, local in {**run_.files, **(extra or {})}.items():
            if dest.startswith("/etc/"):
                target = upper / dest.removeprefix("/etc/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(local, target)
        mounts = ['mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc']
        for index, path in enumerate(volumes):
            (overlay / f"volume-{index}").mkdir()
            mounts.append(f"mount --bind {overlay / f'volume-{index}'} {path}")
        script = " && ".join(mounts) + ' && shift 2 && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(upper), str(work)]

    def run_jobs(
        self, service: str, bin_dir: Path, skip: Sequence[str] = (), until: str | None = None
    ) -> dict[str, str]:
        """Every Job of `service` but those of the components `skip`, in plan order, as the operator
        would run them: stackops Jobs with `stackops job ...`, Kolla Jobs with the service's own
        package; `until`: up to the Job of that component, not included (what comes after it needs
        processes the test starts first). Returns each Job's output."""
        outputs: dict[str, str] = {}
        for step in self.plan.steps:
            for job in (o for o in step.objects if o["kind"] == "Job" and step.service == service):
                component = job["metadata"]["labels"]["app.kubernetes.io/component"]
                if component in skip:
                    continue
                if component == until:
                    return outputs
                if job["spec"]["template"]["spec"]["containers"][0]["command"][0] == "stackops":
                    result = self.stackops_job(service, component)
                else:
                    result = self.kolla_job(service, component, bin_dir)
                assert result.returncode == 0, f"{service} {component}: {result.stderr[-3000:]}"
                outputs[component] = result.stdout
        return outputs

    @contextmanager
    def serve(
        self,
        service: str,
        bin_dir: Path,
        module: str,
        env: dict[str, str],
        probe: str,
        wrapper: Sequence[str] = (),
        port: int | None = None,
    ) -> Iterator[str]:
        """gunicorn serving `module` (the WSGI file the rendered Apache config names) on its port; `wrapper`
        is what the rendered command starts the server through, if anything; `port`: a replica's
        own, behind a balancer on the service's port (tests/support/balancer.py)."""
        workdir = self.root / f"{service}-server{f'-{port}' if port else ''}"
        workdir.mkdir(exist_ok=True)
        # Services parse sys.argv with oslo.config, so gunicorn takes its settings from this file only.
        (workdir / "gunicorn.conf.py").write_text(
            f'bind = "127.0.0.1:{port or self.ports[service]}"\nworkers = 1\n'
            f'wsgi_app = "{module}:application"\ncontrol_socket_disable = True\n'
        )
        log = workdir / "server.log"
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
        process = processes.spawn(
            service, [*wrapper, str(bin_dir / "gunicorn")], log, die_with_parent=True, env=env, cwd=workdir
        )
        url = f"http://127.0.0.1:{port}" if port else self.urls[service]
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"{url}{probe}", timeout=10).status_code < 500:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    pass  # not listening yet, or still loading the application
                if not processes.alive(process.pid) or time.monotonic() > deadline:
                    raise RuntimeError(f"{service} did not answer: {processes.tail(log, 40)}")
                time.sleep(0.3)
            yield url
        finally:
            processes.stop(process, str(workdir), timeout=15)

    @contextmanager
    def running(
        self,
        kind: str,
        service: str,
        component: str,
        bin_dir: Path,
        container: str | None = None,
        wrapper: Sequence[str] | None = None,
        wrapper_env: dict[str, str] | None = None,
    ) -> Iterator[KollaRun]:
        """A long-running process (scheduler, conductor, agent …) as its rendered config.json says;
        `wrapper` instead of the one its service gets (container_paths with more), with `wrapper_env`
        in its environment (what a Sandbox's command needs)."""
        run_ = self.kolla(kind, service, component, container)
        log = self.root / f"{container or f'{service}-{component}'}.log"  # a container's name has its service's
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(self.root), **(wrapper_env or {}), **run_.env}
        argv = run_.argv
        if wrapper is None and service in AT_CONTAINER_PATHS:
            wrapper = self.container_paths(run_, f"{service}-{component}")
        if wrapper:
            argv = in_container(run_)
        # in a session of its own: its workers (nova-conductor's) stop with it
        argv = [*(wrapper or []), *argv]
        process = processes.spawn(f"{service}-{component}", argv, log, die_with_parent=True, env=env)
        try:
            time.sleep(0.5)
            if not processes.alive(process.pid):
                raise RuntimeError(f"{service} {component} exited: {processes.tail(log, 40)}")
            yield run_
        finally:
            processes.stop(process, str(self.root), timeout=15)

    def at(self, release: str) -> Plan:
        """This deployment's cloud as `release` renders it."""
        return plan(at_release(self.cloud, release), self.credentials)

    def upgrade(self, source: str, target: str) -> UpgradePlan:
        """The objects of this deployment's cloud's upgrade from `source` to `target`."""
        return plan_upgrade(at_release(self.cloud, target), source, self.credentials)

    @contextmanager
    def using(self, cloud_plan: Plan) -> Iterator[Deployment]:
        """This deployment's helpers, looking at `cloud_plan` for the Jobs and files they run (a
        cloud at another release, or an upgrade's objects)."""
        saved, self.plan = self.plan, cloud_plan
        try:
            yield self
        finally:
            self.plan = saved


def upgrade_jobs(upgrade: UpgradePlan, service: str) -> Plan:
    """One service's upgrade objects, as a plan the helpers look in: its pre-flight check and the
    Jobs of its steps, with their config Secret."""
    objects = [o for o in upgrade.checks if o["metadata"]["labels"].get("app.kubernetes.io/name") == service]
    objects += [o for s in upgrade.steps if s.service == service and s.kind == "jobs" for o in s.objects]
    return Plan([Step(f"{service}-upgrade", service, objects)], {})


def in_container(run_: KollaRun) -> list[str]:
    """The command line as the container has it: its files at their paths there (for a command run
    under container_paths, which puts them there)."""
    dests = {str(local): dest for dest, local in run_.files.items()}
    return [dests.get(arg, arg) for arg in run_.argv]


def wsgi_module(uwsgi_ini: str, site_packages: Path) -> str:
    """The module the rendered uWSGI config serves, checked to exist in the service's package."""
    script = next(line.split()[-1] for line in uwsgi_ini.splitlines() if line.startswith("wsgi-file"))
    relative = script.split("site-packages/", 1)[1]
    assert (site_packages / relative).is_file(), relative
    return relative.removesuffix(".py").replace("/", ".")


def site_packages(bin_dir: Path) -> Path:
    return next((bin_dir.parent / "lib").glob("python3*/site-packages"))
