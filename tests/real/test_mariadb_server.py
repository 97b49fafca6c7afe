"""The MariaDB container's own scripts, run for real: the rendered my.cnf, start script and readiness
probe against MariaDB from Debian, as the `mysql` user, in a private mount and network namespace
where the rendered files sit at the paths the container uses (/etc/mysql, /var/lib/mysql).

Proves: a new volume is initialised, the root password from the credentials Secret works over TCP,
the probe turns ready, and the database Job's command creates a service database on it. The server
speaks TLS with the certificate the operator issued from the cloud's CA: the Job and a client verify
it by the Service's name, a plaintext connection and a client trusting another CA are refused, and
the oslo.db URL a service is rendered with connects through SQLAlchemy and PyMySQL over TLS;
and root's password rotates through a credential rotation's phases with the server never restarted
and its readiness probe never failing.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

from stackops.certificates import CA_CERT_KEY
from stackops.credentials import (
    Credentials,
    RotationPhase,
    RotationState,
    advance_rotation,
    begin_rotation,
    promote_rotation,
)
from stackops.plan import plan, rotated_credentials
from stackops.services import keystone, mariadb
from stackops.services.base import CloudContext
from stackops.services.mariadb import ROOT_PASSWORD_KEY
from tests.conftest import cloud
from tests.support.mariadb import lay_out_server_config
from tests.support.rendered import cloud_credentials, find, secret_data, secret_files

STACKOPS = str(Path(sys.executable).with_name("stackops"))

SCRIPT = r"""
set -euo pipefail
ip link set lo up
mount --bind "$ROOT/etc/mysql" /etc/mysql
mount --bind "$ROOT/var/lib/mysql" /var/lib/mysql
mount -t tmpfs -o mode=0755 tmpfs /run/mysqld && chown mysql:mysql /run/mysqld
mount --bind "$ROOT/hosts" /etc/hosts  # the Service's name, on this namespace's loopback
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
STACKOPS_DB_ADMIN_USER=root STACKOPS_DB_ADMIN_PASSWORD="$DB_ROOT_PASSWORD" STACKOPS_DB_PASSWORD=$SERVICE_PASSWORD \
    STACKOPS_DB_CA_FILE="$ROOT/ca.crt" \
    "$STACKOPS" job create-database --host="$HOST" --port=3306 --database=keystone --user=keystone
tls=(--ssl --ssl-verify-server-cert --ssl-ca="$ROOT/ca.crt")
MYSQL_PWD=$SERVICE_PASSWORD mysql "${tls[@]}" -h "$HOST" -u keystone -N -B \
    -e "SELECT CONCAT('keystone can log in over ', VARIABLE_VALUE) FROM information_schema.SESSION_STATUS
        WHERE VARIABLE_NAME = 'Ssl_version'" keystone
{ MYSQL_PWD=$SERVICE_PASSWORD mysql --skip-ssl -h "$HOST" -u keystone -e "SELECT 1" keystone 2>&1 || true; } \
    | sed 's/^/plaintext: /'
{ MYSQL_PWD=$SERVICE_PASSWORD mysql --ssl --ssl-verify-server-cert --ssl-ca="$ROOT/other-ca.crt" -h "$HOST" \
    -u keystone -e "SELECT 1" keystone 2>&1 || true; } | sed 's/^/other CA: /'
MYSQL_PWD=wrong mysql "${tls[@]}" -h "$HOST" -u root -e "SELECT 1" 2>/dev/null && echo "root without password: yes" \
    || echo "root without password: refused"
"$ORM_PYTHON" -c 'import sys, pymysql
try:
    pymysql.connect(host=sys.argv[1], user="root", password=sys.argv[2], ssl_disabled=True)
    print("root in plaintext: connected")
except pymysql.err.MySQLError as error:
    print("root in plaintext: refused", error.args[0])' "$HOST" "$DB_ROOT_PASSWORD"
"$ORM_PYTHON" -c 'import sys, sqlalchemy
with sqlalchemy.create_engine(sys.argv[1]).connect() as c:
    print("oslo.db URL:", c.exec_driver_sql("SHOW SESSION STATUS LIKE %s", ("Ssl_cipher",)).one()[1] != "")' "$ORM_URL"
kill "$server"; wait "$server" || true
"""


def test_rendered_mariadb_scripts_start_a_server_that_keeps_the_root_password(
    tmp_path: Path, keystone_bin: Path
) -> None:
    demo = cloud()
    credentials = Credentials(cloud_credentials(demo))
    rendered = plan(demo, credentials)
    files = secret_data(rendered, "demo-mariadb-config")
    host = mariadb.server(CloudContext("demo", "openstack", demo.spec, credentials)).host
    (tmp_path / "etc" / "mysql").mkdir(parents=True)
    (tmp_path / "var" / "lib" / "mysql").mkdir(parents=True)
    # with the certificate, key and CA where kolla_start puts them, my.cnf names them
    lay_out_server_config(files, tmp_path / "etc" / "mysql")
    (tmp_path / "ca.crt").write_text(credentials[CA_CERT_KEY])
    (tmp_path / "other-ca.crt").write_text(Credentials(cloud_credentials(demo))[CA_CERT_KEY])
    (tmp_path / "hosts").write_text(f"127.0.0.1 localhost {host}\n")
    # keystone's database URL as rendered, its CA path where this test keeps the CA
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(secret_data(rendered, "demo-keystone-config")["keystone.conf"])
    url = conf["database"]["connection"]
    assert url.endswith(f"&ssl_ca={keystone.SERVICE.ca_file}") and f"@{host}:3306/" in url
    url = url.replace(keystone.SERVICE.ca_file, str(tmp_path / "ca.crt"))
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
            "HOST": host,
            "SERVICE_PASSWORD": credentials[keystone.SERVICE.database_password_key],
            "ORM_PYTHON": str(keystone_bin / "python"),
            "ORM_URL": url,
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
    assert "keystone can log in over TLSv1.3" in result.stdout
    # the password that logged in over TLS just before, refused without it (require_secure_transport:
    # MariaDB answers access denied)
    assert "plaintext: ERROR 1045" in result.stdout
    assert "other CA: ERROR 2026" in result.stdout  # TLS/SSL error: the certificate is not trusted
    assert "oslo.db URL: True" in result.stdout
    assert "root in plaintext: refused 1045" in result.stdout
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
    # plaintext: the Jobs here reach the server by its loopback address, not the names its certificate has
    demo = cloud({"internalTLS": {"enabled": False}})
    values = cloud_credentials(demo)
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
    config = secret_data(first, "demo-mariadb-config")
    etc = tmp_path / "etc" / "mysql"
    # the projected volume as the kubelet makes it: a link to the current set of files, swapped at once
    (etc / "secrets.0").mkdir(parents=True)
    (etc / "secrets").symlink_to("secrets.0")
    (tmp_path / "var" / "lib" / "mysql").mkdir(parents=True)
    for name in ("my.cnf", "mariadb-start.sh", "mariadb-probe.sh"):
        (etc / name).write_text(config[name])
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
