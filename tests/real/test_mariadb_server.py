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
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackops.certificates import CA_CERT_KEY
from stackops.credentials import (
    Credentials,
)
from stackops.plan import plan
from stackops.services import keystone, mariadb
from stackops.services.base import CloudContext
from stackops.services.mariadb import ROOT_PASSWORD_KEY
from tests.conftest import cloud
from tests.support.mariadb import lay_out_server_config
from tests.support.rendered import cloud_credentials, renewed, secret_data, serial

STACKOPS = str(Path(sys.executable).with_name("stackops"))

SCRIPT = r"""
set -euo pipefail
ip link set lo up
mount -t tmpfs -o mode=1777 tmpfs /tmp  # the container's own /tmp (ROOT is elsewhere)
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
# A renewal as the kubelet makes it: the projected volume's link swapped to the new files at once.
# The readiness probe has the server load them; new clients get the new certificate, verified by the
# Service's name, from the same server process.
served() {
    openssl s_client -starttls mysql -connect "$HOST:3306" -CAfile "$ROOT/ca.crt" -verify_hostname "$HOST" \
        -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial
}
mysqld=$(pgrep -u mysql -x mysqld)
echo "before renewal: $(served)"
ln -s tls.renewed /etc/mysql/tls.next && mv -T /etc/mysql/tls.next /etc/mysql/tls
echo "served before the probe: $(served)"
runuser -u mysql -- env DB_ROOT_PASSWORD_FILE=/etc/mysql/root-password /bin/bash /etc/mysql/mariadb-probe.sh \
    && echo "probe after renewal: ready"
echo "after renewal: $(served)"
[ "$(pgrep -u mysql -x mysqld)" = "$mysqld" ] && echo "server process: the same"
MYSQL_PWD=$SERVICE_PASSWORD mysql "${tls[@]}" -h "$HOST" -u keystone -N -B -e "SELECT 'keystone after renewal'" keystone
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


@pytest.fixture
def root_outside_tmp() -> Iterator[Path]:
    """A test's directory outside /tmp, which the server's namespace gets a tmpfs of its own for."""
    root = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="stackops-mariadb-"))
    try:
        yield root
    finally:
        shutil.rmtree(root)


def test_rendered_mariadb_scripts_start_a_server_that_keeps_the_root_password(
    root_outside_tmp: Path, keystone_bin: Path
) -> None:
    tmp_path = root_outside_tmp
    demo = cloud()
    credentials = Credentials(cloud_credentials(demo))
    rendered = plan(demo, credentials)
    files = secret_data(rendered, "demo-mariadb-config")
    ctx = CloudContext("demo", "openstack", demo.spec, credentials)
    host = mariadb.server(ctx).host
    (tmp_path / "etc" / "mysql").mkdir(parents=True)
    (tmp_path / "var" / "lib" / "mysql").mkdir(parents=True)
    # the served certificate, key and CA (its volume, a link to the current files as the kubelet makes
    # it), where my.cnf names them; and the renewed ones a renewal swaps in
    etc = tmp_path / "etc" / "mysql"
    lay_out_server_config(files, mariadb.MARIADB.tls_files(ctx), etc)
    (etc / "tls").rename(etc / "tls.0")
    (etc / "tls").symlink_to("tls.0")
    (request,) = mariadb.MARIADB.certificates(ctx)
    renewed_credentials = renewed(credentials, request, demo)
    renewed_ctx = CloudContext("demo", "openstack", demo.spec, renewed_credentials)
    lay_out_server_config(files, mariadb.MARIADB.tls_files(renewed_ctx), tmp_path / "renewed")
    (tmp_path / "renewed" / "tls").rename(etc / "tls.renewed")
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
    # renewed without a restart: the old certificate until the probe, the new one after
    old, new = (serial(c[request.cert_key]) for c in (credentials, renewed_credentials))
    assert old != new
    assert f"before renewal: serial={old}" in result.stdout
    assert f"served before the probe: serial={old}" in result.stdout
    assert "probe after renewal: ready" in result.stdout
    assert f"after renewal: serial={new}" in result.stdout
    assert "server process: the same" in result.stdout
    assert "keystone after renewal" in result.stdout
