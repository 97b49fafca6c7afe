"""The MariaDB container's own scripts, run for real: the rendered my.cnf, start script and readiness
probe against MariaDB from Debian, as the `mysql` user, in a private mount and network namespace
where the rendered files sit at the paths the container uses (/etc/mysql, /var/lib/mysql).

Proves: a new volume is initialised, the root password from the credentials Secret works over TCP,
the probe turns ready, and the database Job's command creates a service database on it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from stackops.credentials import Credentials, complete
from stackops.plan import plan, required_credentials
from stackops.services.mariadb import ROOT_PASSWORD_KEY
from tests.conftest import cloud
from tests.support.rendered import secret_data

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
