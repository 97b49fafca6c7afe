"""The MariaDB container's own scripts, run for real: the rendered my.cnf, start script and readiness
probe against MariaDB from Debian, as the `mysql` user, in a private mount and network namespace
where the rendered files sit at the paths the container uses (/etc/mysql, /var/lib/mysql).

Proves: a new volume is initialised, the root password from the credentials Secret works over TCP,
the probe turns ready, and the database Job's command creates a service database on it; and root's
password rotates through a credential rotation's phases with the server never restarted and its
readiness probe never failing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from stackops.credentials import (
    Credentials,
    RotationPhase,
    RotationState,
    advance_rotation,
    begin_rotation,
    complete,
    promote_rotation,
)
from stackops.plan import plan, required_credentials, rotated_credentials
from stackops.services.mariadb import ROOT_PASSWORD_KEY
from tests.conftest import cloud
from tests.support.rendered import find, secret_data, secret_files

STACKOPS = str(Path(sys.executable).with_name("stackops"))

SCRIPT = r"""
set -euo pipefail
ip link set lo up
mount --bind "$ROOT/etc/mysql" /etc/mysql
mount --bind "$ROOT/var/lib/mysql" /var/lib/mysql
mount -t tmpfs -o mode=0755 tmpfs /run/mysqld && chown mysql:mysql /run/mysqld
runuser -u mysql -- env DB_ROOT_PASSWORD_FILE=/etc/mysql/root-password POD_NAME=demo-mariadb-0 POD_IP=127.0.0.1 \
    /bin/bash /etc/mysql/mariadb-start.sh >"$ROOT/server.log" 2>&1 &
server=$!
ready=no
for _ in $(seq 1 120); do
    if runuser -u mysql -- env DB_ROOT_PASSWORD_FILE=/etc/mysql/root-password /bin/bash /etc/mysql/mariadb-probe.sh \
        2>/dev/null; then
        ready=yes; break
    fi
    sleep 0.5
done
echo "probe: $ready"
STACKOPS_DB_ADMIN_USER=root STACKOPS_DB_ADMIN_PASSWORD="$DB_ROOT_PASSWORD" STACKOPS_DB_PASSWORD=servicepw \
    "$STACKOPS" job create-database --host=127.0.0.1 --port=3306 --database=keystone --user=keystone
MYSQL_PWD=servicepw mysql -h 127.0.0.1 -u keystone -N -B -e "SELECT 'keystone can log in'" keystone
MYSQL_PWD=wrong mysql -h 127.0.0.1 -u root -e "SELECT 1" 2>/dev/null && echo "root without password: yes" \
    || echo "root without password: refused"
kill "$server"; wait "$server" || true
"""


def test_rendered_mariadb_scripts_start_a_server_that_keeps_the_root_password(tmp_path: Path) -> None:
    demo = cloud()
    credentials = Credentials(complete(required_credentials(demo.spec), {}))
    files = secret_data(plan(demo, credentials), "demo-mariadb-config")
    (tmp_path / "etc" / "mysql").mkdir(parents=True)
    (tmp_path / "var" / "lib" / "mysql").mkdir(parents=True)
    for name in ("my.cnf", "mariadb-start.sh", "mariadb-probe.sh"):
        (tmp_path / "etc" / "mysql" / name).write_text(files[name])
    # the root password as the pod's Secret file gives it
    (tmp_path / "etc" / "mysql" / "root-password").write_text(credentials[ROOT_PASSWORD_KEY])
    (tmp_path / "etc" / "mysql" / "root-password").chmod(0o400)
    shutil.chown(tmp_path / "etc" / "mysql" / "root-password", "mysql", "mysql")
    shutil.chown(tmp_path / "var" / "lib" / "mysql", "mysql", "mysql")
    tmp_path.chmod(0o755)
    result = subprocess.run(
        ["unshare", "--mount", "--net", "--fork", "bash", "-c", SCRIPT],
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "ROOT": str(tmp_path),
            "DB_ROOT_PASSWORD": credentials[ROOT_PASSWORD_KEY],
            "STACKOPS": STACKOPS,
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    log = (tmp_path / "server.log").read_text() if (tmp_path / "server.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log[-2000:]
    assert "probe: yes" in result.stdout, log[-2000:]
    assert "create-database: database keystone created" in result.stdout
    assert "keystone can log in" in result.stdout
    assert "root without password: refused" in result.stdout
    assert (tmp_path / "var" / "lib" / "mysql" / "keystone").is_dir()


ROTATION_SCRIPT = r"""
set -euo pipefail
ip link set lo up
mount --bind "$ROOT/etc/mysql" /etc/mysql
mount --bind "$ROOT/var/lib/mysql" /var/lib/mysql
mount -t tmpfs -o mode=0755 tmpfs /run/mysqld && chown mysql:mysql /run/mysqld
probe() {
    runuser -u mysql -- env DB_ROOT_PASSWORD_FILE=/etc/mysql/secrets/DB_ROOT_PASSWORD \
        DB_ROOT_PASSWORD_NEXT_FILE=/etc/mysql/secrets/DB_ROOT_PASSWORD_NEXT /bin/bash /etc/mysql/mariadb-probe.sh
}
runuser -u mysql -- env DB_ROOT_PASSWORD_FILE=/etc/mysql/secrets/DB_ROOT_PASSWORD POD_NAME=demo-mariadb-0 \
    POD_IP=127.0.0.1 /bin/bash /etc/mysql/mariadb-start.sh >"$ROOT/server.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do probe 2>/dev/null && break; sleep 0.5; done
probe
# the kubelet's readiness probe, all along: a failure would take the server out of its Service
(while [ ! -e "$ROOT/stop" ]; do
    if probe 2>>"$ROOT/probe.err"; then echo ok >>"$ROOT/probes"; else echo FAILED >>"$ROOT/probes"; fi
    sleep 0.2
done) &
prober=$!
source "$ROOT/phases.sh"
touch "$ROOT/stop"; wait "$prober"
kill "$server"; wait "$server" || true
"""


def test_root_password_rotates_with_the_server_ready_throughout(tmp_path: Path) -> None:
    """A rotation of root's password through its phases on a server started by the rendered scripts,
    which never restarts: in each phase the Secret files change as the kubelet changes them (the
    server's projection, the new value while its key exists), then the phase's root Job and a
    service's database Job run with the keys their rendered specs name. The readiness probe, run
    every 0.2 s throughout, never fails; at the end root takes the new password only."""
    demo = cloud()
    values = complete(required_credentials(demo.spec), {})
    phases: list[tuple[str, Credentials]] = [("before", Credentials(values))]
    values, state = begin_rotation(values, RotationState(), 1, rotated_credentials(demo.spec), [])
    while state.phase is not None:
        phases.append((state.phase.value, Credentials(values, rotation=state)))
        if state.phase is RotationPhase.REVOKING:
            values, state = promote_rotation(values, state)
        else:
            state = advance_rotation(state)
    phases.append(("after", Credentials(values, rotation=state)))
    first = plan(demo, phases[0][1])
    files = secret_data(first, "demo-mariadb-config")
    etc = tmp_path / "etc" / "mysql"
    # the projected volume as the kubelet makes it: a link to the current set of files, swapped at once
    (etc / "secrets.0").mkdir(parents=True)
    (etc / "secrets").symlink_to("secrets.0")
    (tmp_path / "var" / "lib" / "mysql").mkdir(parents=True)
    for name in ("my.cnf", "mariadb-start.sh", "mariadb-probe.sh"):
        (etc / name).write_text(files[name])
    # the Secret's files as the pod starts with them: root's password, no rotation yet
    (etc / "secrets.0" / "DB_ROOT_PASSWORD").write_text(phases[0][1][ROOT_PASSWORD_KEY])
    for path in (etc / "secrets.0", etc / "secrets.0" / "DB_ROOT_PASSWORD", tmp_path / "var" / "lib" / "mysql"):
        shutil.chown(path, "mysql", "mysql")
    tmp_path.chmod(0o755)
    lines = []
    for version, (name, credentials) in enumerate(phases, start=1):
        rendered = plan(demo, credentials)
        secret = credentials.values()
        pod = find(rendered, "StatefulSet", "mariadb", "server")["spec"]["template"]["spec"]
        assert pod == find(first, "StatefulSet", "mariadb", "server")["spec"]["template"]["spec"]  # no roll
        lines.append(f"echo '== {name}'")
        # the kubelet's update of the projected volume: the files whose keys exist, swapped at once
        layout = {var: secret.get(ref["key"]) for var, ref in secret_files(pod).items()}
        files = f"/etc/mysql/secrets.{version}"
        lines += [f"mkdir {files}"]
        lines += [f"printf %s '{value}' >{files}/{var}" for var, value in layout.items() if value]
        lines += [
            f"chown -R mysql:mysql {files} && chmod 0440 {files}/*",
            f"ln -s secrets.{version} /etc/mysql/secrets.link && mv -T /etc/mysql/secrets.link /etc/mysql/secrets",
            "sleep 1",
        ]
        for component in ("root-password", "database") if name in ("Granting", "Rolling", "Revoking") else ():
            service = "mariadb" if component == "root-password" else "keystone"
            job = find(rendered, "Job", service, component)
            env = {var: secret[ref["key"]] for var, ref in secret_files(job["spec"]["template"]["spec"]).items()}
            container = job["spec"]["template"]["spec"]["containers"][0]
            env |= {v["name"]: v["value"] for v in container["env"] if not v["name"].endswith("_FILE")}
            assignments = " ".join(f"{k}='{v}'" for k, v in sorted(env.items()))
            # the server's Service, here: the namespace's loopback
            argv = [a if not a.startswith("--host=") else "--host=127.0.0.1" for a in container["args"]]
            lines.append(f'{assignments} "$STACKOPS" {" ".join(container["command"][1:] + argv)}')
        lines.append("sleep 1")
    old, new = phases[0][1][ROOT_PASSWORD_KEY], phases[-1][1][ROOT_PASSWORD_KEY]
    lines.append(
        f"for pw in {old} {new}; do MYSQL_PWD=$pw mysql -h 127.0.0.1 -u root -N -B -e 'SELECT 1' >/dev/null 2>&1"
        ' && echo "root $pw: yes" || echo "root $pw: refused"; done'
    )
    (tmp_path / "phases.sh").write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        ["unshare", "--mount", "--net", "--fork", "bash", "-c", ROTATION_SCRIPT],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "ROOT": str(tmp_path), "STACKOPS": STACKOPS},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = (tmp_path / "server.log").read_text() if (tmp_path / "server.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log[-2000:]
    probes = (tmp_path / "probes").read_text().split()
    errors = (tmp_path / "probe.err").read_text() if (tmp_path / "probe.err").exists() else ""
    print(f"probes: {len(probes)}, failed: {probes.count('FAILED')}")
    assert len(probes) > 20 and "FAILED" not in probes, errors[-2000:]
    out = result.stdout
    assert "set-database-password: user root@% accepts its old password beside the new one" in out
    assert "set-database-password: user root@localhost accepts only its password" in out  # revoking
    assert out.count("create-database: ") >= 3  # a service's database Job, as root, in every phase
    assert f"root {old}: refused" in out and f"root {new}: yes" in out
