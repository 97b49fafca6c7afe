"""The `stackops` command.

Every user mistake ends as one line per problem on stderr and exit status 2; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stackops import __version__
from stackops.api.crd import crd_yaml
from stackops.api.models import GROUP, PLURAL, VERSION, OpenStackCloud
from stackops.api.reference import reference_markdown
from stackops.api.validation import InvalidCloud, load_cloud_text
from stackops.devcluster.cli import register as register_dev_cluster
from stackops.devcluster.demo import register as register_demo
from stackops.devcluster.errors import DevClusterError
from stackops.plan import plan, problems
from stackops.render.output import to_json, to_yaml
from stackops.services import all_services, identity
from stackops.services.base import RenderError, RenderOptions, default_operator_image
from stackops.services.network_policies import flows_markdown

EXIT_USAGE = 2


class UserError(Exception):
    """Problems the user can fix; printed one per line, exit 2."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_cloud(path: str) -> OpenStackCloud:
    source = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise UserError([f"{source}: cannot read: {reason}"]) from None
    try:
        cloud = load_cloud_text(text)
    except InvalidCloud as error:
        raise UserError([f"{source}: {p}" for p in error.problems]) from None
    found = problems(cloud.spec)
    if found:
        raise UserError([f"{source}: {p}" for p in found])
    return cloud


def cmd_render(args: argparse.Namespace) -> int:
    cloud = load_cloud(args.file)
    known = [s.name for s in all_services()]
    if args.service and args.service not in known:
        raise UserError([f"--service: unknown service {args.service!r} (known: {', '.join(known)})"])
    try:
        result = plan(cloud, options=RenderOptions(operator_image=args.operator_image))
    except RenderError as error:
        raise UserError([f"{args.file}: {error}"]) from None
    steps = [s for s in result.steps if not args.service or s.service == args.service]
    objects = [obj for step in steps for obj in step.objects]
    emit(to_json(objects) if args.output == "json" else to_yaml(objects))
    return 0


def emit(text: str) -> None:
    """Rendered output to stdout as UTF-8, whatever the locale says (values may hold any character)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()


def flows_markers(source: str) -> tuple[str, str]:
    """The markers of the generated flows table of the cloud file `source` in a document."""
    return f"<!-- generated: network flows of {source} -->", f"<!-- end: network flows of {source} -->"


def cmd_flows(args: argparse.Namespace) -> int:
    """The connections a cloud's NetworkPolicies allow, as a Markdown table; `--doc` rewrites the
    table between the markers naming the cloud file in that document (docs/security.md)."""
    cloud = load_cloud(args.file)
    if not cloud.spec.network_policies.enabled:
        raise UserError([f"{args.file}: spec.networkPolicies.enabled is false: the cloud's pods accept any connection"])
    try:
        flows = plan(cloud).flows
    except RenderError as error:
        raise UserError([f"{args.file}: {error}"]) from None
    table = flows_markdown(flows)
    if not args.doc:
        emit(table)
        return 0
    path = Path(args.doc)
    start, end = flows_markers(args.file)
    text = path.read_text(encoding="utf-8")
    before, found_start, rest = text.partition(start)
    _, found_end, after = rest.partition(end)
    if not found_start or not found_end:
        raise UserError([f"--doc: {path} has no section between {start} and {end}"])
    path.write_text(f"{before}{start}\n{table}{end}{after}", encoding="utf-8")
    print(path)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    cloud = load_cloud(args.file)
    try:
        plan(cloud)
    except RenderError as error:
        raise UserError([f"{args.file}: {error}"]) from None
    print(f"{args.file}: OpenStackCloud {cloud.metadata.name} is valid (release {cloud.spec.release})")
    return 0


def write_file(flag: str, target: Path, text: str) -> int:
    """Write a generated file, creating its folder; a failure names the flag that chose the place."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UserError([f"{flag}: cannot write {target}: {error.strerror}"]) from None
    print(target)
    return 0


def cmd_crds(args: argparse.Namespace) -> int:
    return write_file("--output-dir", Path(args.output_dir) / f"{GROUP}_{PLURAL}.yaml", crd_yaml())


def cmd_docs(args: argparse.Namespace) -> int:
    return write_file("--output", Path(args.output), reference_markdown())


def cmd_rbac(args: argparse.Namespace) -> int:
    from stackops.reconcile.rbac import cluster_role

    emit(to_yaml([cluster_role(args.name)]))
    return 0


def _job_setting(name: str) -> str | None:
    """A setting a Job gives its command: from the variable NAME, or from the file NAME_FILE names
    (how the rendered Jobs pass Secret values: CloudContext.stackops_job); None when neither is set."""
    if name in os.environ:
        return os.environ[name]
    if f"{name}_FILE" not in os.environ:
        return None
    try:
        return Path(os.environ[f"{name}_FILE"]).read_text()
    except OSError as error:
        raise UserError([f"environment: {name}_FILE: {error.strerror}: {error.filename}"]) from None


def _job_file(name: str) -> str | None:
    """The path of a file a Job is given (NAME_FILE, as the rendered Jobs give the cloud's CA), checked
    readable; None when it is not given."""
    path = os.environ.get(f"{name}_FILE")
    if path is not None and not os.access(path, os.R_OK):
        raise UserError([f"environment: {name}_FILE: cannot read {path}"])
    return path


def _job_environment(*names: str) -> dict[str, str]:
    """The settings a Job must be given (_job_setting); every missing or unreadable one named at once."""
    found: dict[str, str] = {}
    problems: list[str] = []
    for name in names:
        try:
            value = _job_setting(name)
        except UserError as error:
            problems += error.problems
            continue
        if value is None:
            problems.append(f"environment: neither {name} nor {name}_FILE is set")
        else:
            found[name] = value
    if problems:
        raise UserError(problems)
    return found


def _job_outcome(job: str, work: Callable[[], list[str]], errors: type[Exception] | tuple[type[Exception], ...]) -> int:
    """Run a Job's `work` and print what it changed ("nothing to change" when nothing did), or its
    error, one line on stderr, exiting 1."""
    try:
        changed = work()
    except errors as error:
        print(f"{job}: {error}", file=sys.stderr)
        return 1
    for line in changed or ["nothing to change"]:
        print(f"{job}: {line}")
    return 0


def _database_job(args: argparse.Namespace) -> tuple[Any, dict[str, str]]:
    """The administrator a database Job logs in as (jobs.database.Admin), and its settings."""
    # Imported here: PyMySQL is only needed inside the Job.
    from stackops.jobs.database import Admin

    env = _job_environment("STACKOPS_DB_ADMIN_USER", "STACKOPS_DB_ADMIN_PASSWORD", "STACKOPS_DB_PASSWORD")
    # given, the server speaks TLS (the cloud's own MariaDB): the CA its certificate is verified with
    ca = _job_file("STACKOPS_DB_CA")
    return Admin(args.host, args.port, env["STACKOPS_DB_ADMIN_USER"], env["STACKOPS_DB_ADMIN_PASSWORD"], ca), env


def cmd_create_database(args: argparse.Namespace) -> int:
    from stackops.jobs.database import DatabaseJobError, create_databases

    admin, env = _database_job(args)
    old = _job_setting("STACKOPS_DB_OLD_PASSWORD")  # during a credential rotation: accepted too
    return _job_outcome(
        "create-database",
        lambda: create_databases(admin, args.database, args.user, env["STACKOPS_DB_PASSWORD"], old),
        DatabaseJobError,
    )


def cmd_set_database_password(args: argparse.Namespace) -> int:
    from stackops.jobs.database import DatabaseJobError, set_password

    admin, env = _database_job(args)
    old = _job_setting("STACKOPS_DB_OLD_PASSWORD")
    return _job_outcome(
        "set-database-password",
        lambda: set_password(admin, args.user, args.account_host, env["STACKOPS_DB_PASSWORD"], old),
        DatabaseJobError,
    )


def cmd_store_rings(args: argparse.Namespace) -> int:
    from stackops.jobs.rings import RingsJobError, store_rings
    from stackops.kube.client import Kube
    from stackops.kube.kinds import kind_of

    kube = Kube(_api(None))
    secret = kind_of({"apiVersion": "v1", "kind": "Secret"})
    return _job_outcome(
        "store-rings",
        lambda: store_rings(kube, secret, args.namespace, args.secret, Path(args.directory)),
        RingsJobError,
    )


def _bucket(args: argparse.Namespace) -> Any:
    """The bucket of a backup Job's object store: where from the arguments, the credentials from the
    environment (as files), the CA bundle a file STACKOPS_S3_CA_BUNDLE_FILE names."""
    from stackops.jobs.object_store import Bucket

    env = _job_environment("STACKOPS_S3_ACCESS_KEY_ID", "STACKOPS_S3_SECRET_ACCESS_KEY")
    return Bucket(
        endpoint=args.endpoint,
        bucket=args.bucket,
        region=args.region,
        prefix=args.prefix,
        access_key=env["STACKOPS_S3_ACCESS_KEY_ID"].strip(),
        secret_key=env["STACKOPS_S3_SECRET_ACCESS_KEY"].strip(),
        ca_bundle=os.environ.get("STACKOPS_S3_CA_BUNDLE_FILE"),
        path_style=args.addressing_style == "Path",
    )


def cmd_backup_upload(args: argparse.Namespace) -> int:
    from stackops.jobs.object_store import ObjectStoreJobError, upload

    bucket = _bucket(args)

    def work() -> list[str]:
        changed, newest = upload(bucket, Path(args.directory), args.retention)
        # the newest backup's manifest, with where it went, for the operator (the pod's termination message)
        Path(os.environ.get("TERMINATION_LOG", "/dev/termination-log")).write_text(json.dumps(newest))
        return changed

    return _job_outcome("backup-upload", work, ObjectStoreJobError)


def cmd_backup_download(args: argparse.Namespace) -> int:
    from stackops.jobs.object_store import ObjectStoreJobError, download

    bucket = _bucket(args)
    return _job_outcome(
        "backup-download", lambda: download(bucket, args.name, Path(args.directory)), ObjectStoreJobError
    )


def _messaging_job(args: argparse.Namespace) -> tuple[Any, str]:
    """The administrator a messaging Job logs in as (jobs.messaging.Admin), and the password it sets."""
    from stackops.jobs.messaging import Admin

    env = _job_environment("STACKOPS_MQ_ADMIN_USER", "STACKOPS_MQ_ADMIN_PASSWORD", "STACKOPS_MQ_PASSWORD")
    admin = Admin(
        args.host,
        args.management_port,
        env["STACKOPS_MQ_ADMIN_USER"],
        env["STACKOPS_MQ_ADMIN_PASSWORD"],
        # given, the management API is served over TLS and verified against this CA (the cloud's own RabbitMQ)
        _job_file("STACKOPS_MQ_CA"),
    )
    return admin, env["STACKOPS_MQ_PASSWORD"]


def cmd_create_messaging_user(args: argparse.Namespace) -> int:
    from stackops.jobs.messaging import MessagingJobError, create_user

    admin, password = _messaging_job(args)
    return _job_outcome(
        "create-messaging-user",
        lambda: create_user(admin, args.user, args.vhost, password, args.remove_user),
        MessagingJobError,
    )


def cmd_create_messaging_admin(args: argparse.Namespace) -> int:
    from stackops.jobs.messaging import MessagingJobError, create_admin

    admin, password = _messaging_job(args)
    return _job_outcome(
        "create-messaging-admin", lambda: create_admin(admin, args.user, password, args.remove_user), MessagingJobError
    )


def _api(kubeconfig: str | None) -> Any:
    from kubernetes import client, config

    try:
        if kubeconfig:
            return config.new_client_from_config(config_file=kubeconfig)
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            return config.new_client_from_config()
    except config.ConfigException as error:
        raise UserError([f"--kubeconfig: {error}"]) from None


def _clouds(args: argparse.Namespace) -> list[dict[str, Any]]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    custom = client.CustomObjectsApi(_api(args.kubeconfig))
    try:
        if args.name:
            return [custom.get_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL, args.name)]
        if args.all_namespaces:
            items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
        else:
            items = custom.list_namespaced_custom_object(GROUP, VERSION, args.namespace, PLURAL)["items"]
    except ApiException as error:
        if error.status == 404 and args.name:
            raise UserError([f"{args.namespace}/{args.name}: no such OpenStackCloud"]) from None
        raise UserError([f"API server: {error.status} {error.reason}"]) from None
    except OSError as error:  # connection refused, DNS, TLS
        raise UserError([f"API server not reachable: {error}"]) from None
    return list(items)


def cmd_status(args: argparse.Namespace) -> int:
    import json
    import time

    from rich.console import Console, Group
    from rich.live import Live

    from stackops.status_view import cloud_summary, cloud_table

    if args.output == "json":
        print(json.dumps([cloud_summary(c) for c in _clouds(args)], indent=2))
        return 0
    console = Console()

    def view() -> Group:
        clouds = _clouds(args)
        return Group(*[cloud_table(c) for c in clouds]) if clouds else Group("no OpenStackClouds")

    if not args.watch:
        console.print(view())
        return 0
    with Live(view(), console=console, refresh_per_second=2) as live:
        try:
            while True:
                time.sleep(2)
                live.update(view())
        except KeyboardInterrupt:
            return 0


def cmd_clouds_yaml(args: argparse.Namespace) -> int:
    """The cloud's admin credentials as clouds.yaml, read from its status and credentials Secret."""
    import yaml

    from stackops.devcluster.identities import write_private
    from stackops.openstack.clouds import CloudNotReachable, read

    # absolute: clouds.yaml is read from wherever the client runs
    chosen = args.ca_file or (Path(args.output).with_suffix(".ca.crt") if args.output else None)
    ca_file = str(Path(chosen).resolve()) if chosen else None
    try:
        document, ca = read(_api(args.kubeconfig), args.namespace, args.name, args.cloud, ca_file)
    except CloudNotReachable as error:
        raise UserError([str(error)]) from None
    if ca and ca_file:
        Path(ca_file).write_text(ca)
        print(f"wrote {ca_file}: the cloud's CA, which clouds.yaml names (cacert)", file=sys.stderr)
    elif ca:
        print("the cloud's endpoints serve its own CA's certificates: --ca-file PATH writes it there", file=sys.stderr)
    text = yaml.safe_dump(document, sort_keys=False)
    if args.output:
        write_private(Path(args.output), text)  # it holds a password
        print(f"wrote {args.output}: openstack --os-cloud {args.cloud or args.name} ...", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from kubernetes import client
    from rich.console import Console
    from rich.table import Table

    core = client.CoreV1Api(_api(args.kubeconfig))
    selector = f"involvedObject.name={args.name},involvedObject.kind=OpenStackCloud"
    events = core.list_namespaced_event(args.namespace, field_selector=selector).items

    def when(event: Any) -> str:
        stamp = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
        return stamp.strftime("%Y-%m-%d %H:%M:%S") if stamp else ""

    table = Table(title=f"events of {args.namespace}/{args.name}", title_justify="left")
    for column in ("time", "type", "reason", "message"):
        table.add_column(column)
    for event in sorted(events, key=when):
        colour = "red" if event.type == "Warning" else "white"
        table.add_row(when(event), f"[{colour}]{event.type}[/]", event.reason or "", event.message or "")
    Console().print(table if events else f"no events for {args.namespace}/{args.name}")
    return 0


def _setting(args: argparse.Namespace, flag: str, env: str, default: str) -> str:
    """A flag's value, else its environment variable's, else the default."""
    value = getattr(args, flag.lstrip("-").replace("-", "_"))
    return str(value) if value is not None else os.environ.get(env, default)


def _number(args: argparse.Namespace, flag: str, env: str, default: str, minimum: float) -> float:
    text = _setting(args, flag, env, default)
    try:
        number = float(text)
    except ValueError:
        raise UserError([f"{flag} ({env}): {text!r} is not a number"]) from None
    if number < minimum:
        raise UserError([f"{flag} ({env}): must be at least {minimum:g}"])
    return number


def _choice(args: argparse.Namespace, flag: str, env: str, choices: Sequence[str]) -> str:
    value = _setting(args, flag, env, choices[0])
    if value not in choices:
        raise UserError([f"{flag} ({env}): {value!r} is not one of {', '.join(choices)}"])
    return value


def operator_options(args: argparse.Namespace) -> Any:
    """OperatorOptions from flags, else STACKOPS_* variables (for a Deployment's env); a bad value
    names its flag."""
    from stackops.health.cloud import INTERFACES, HealthSettings, SettingError, keystone_urls
    from stackops.reconcile.operator import OperatorOptions

    urls = args.keystone_url or [u for u in os.environ.get("STACKOPS_KEYSTONE_URL", "").split(",") if u]
    try:
        keystone = keystone_urls(urls)
    except SettingError as error:
        raise UserError([str(error)]) from None
    switched_off = os.environ.get("STACKOPS_OPENSTACK_CHECKS", "true").lower() in ("false", "0", "no", "off")
    health = HealthSettings(
        interval=_number(args, "--health-interval", "STACKOPS_HEALTH_INTERVAL", "30", 1),
        timeout=_number(args, "--check-timeout", "STACKOPS_CHECK_TIMEOUT", "10", 0.1),
        openstack=not (args.no_openstack_checks or switched_off),
        interface=_choice(args, "--openstack-interface", "STACKOPS_OPENSTACK_INTERFACE", INTERFACES),
        keystone_urls=keystone,
    )
    port = _number(args, "--metrics-port", "STACKOPS_METRICS_PORT", "9090", 0)
    return OperatorOptions(
        namespaces=tuple(n for n in (args.namespace or []) if n),
        leader_election=not args.no_leader_election,
        lease_namespace=args.lease_namespace,
        health_port=args.health_port,
        kubeconfig=args.kubeconfig,
        metrics_port=int(port),
        health=health,
    )


def cmd_operator(args: argparse.Namespace) -> int:
    from stackops import logs
    from stackops.reconcile.operator import run

    log_format = _choice(args, "--log-format", "STACKOPS_LOG_FORMAT", logs.FORMATS)
    options = operator_options(args)
    logs.configure(log_format)
    try:
        return run(options)
    except OSError as error:  # a port already taken
        raise UserError([f"--metrics-port: cannot serve on {options.metrics_port}: {error.strerror}"]) from None


def _keystone_admin_job(job: str, region: str, password_var: str, work: Callable[[Any, str], list[str]]) -> int:
    """Run `work(connection, password)` as keystone's admin (OS_AUTH_URL, OS_USERNAME, OS_PASSWORD),
    with the password the Job sets from `password_var` (none when empty); prints what changed."""
    import openstack

    env = _job_environment("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", *([password_var] if password_var else []))

    # the cloud's CA, as a file (identity.admin_job: with internal TLS); else the image's public CAs
    cacert = os.environ.get(f"{identity.CA_CERT_ENV}_FILE")

    def connected_work() -> list[str]:
        conn = openstack.connect(
            cacert=cacert,
            auth_url=env["OS_AUTH_URL"],
            username=env["OS_USERNAME"],
            password=env["OS_PASSWORD"],
            project_name=os.environ.get("OS_PROJECT_NAME", "admin"),
            user_domain_name="Default",
            project_domain_name="Default",
            region_name=region,
            interface="internal",
        )
        return work(conn, env.get(password_var, ""))

    return _job_outcome(job, connected_work, openstack.exceptions.SDKException)


def cmd_register_service(args: argparse.Namespace) -> int:
    from stackops.openstack.registration import Registration, register

    urls = {"public": args.public_url, "internal": args.internal_url}
    endpoints = {interface: url for interface, url in urls.items() if url}
    registration = Registration(
        args.region,
        args.type,
        args.name,
        args.description,
        endpoints,
        args.user,
        args.project,
        retired_user=args.remove_user,
    )
    return _keystone_admin_job(
        "register-service",
        args.region,
        "STACKOPS_SERVICE_PASSWORD",
        lambda conn, password: register(conn, registration, password),
    )


def cmd_deregister_services(args: argparse.Namespace) -> int:
    from stackops.openstack.registration import CatalogService, ServiceUser, deregister

    services = [CatalogService(*entry) for entry in args.service or ()]
    users = [ServiceUser(name, domain) for domain, name in args.user or ()]
    return _keystone_admin_job(
        "deregister-services", args.region, "", lambda conn, _password: deregister(conn, services, users)
    )


def cmd_create_domain_admin(args: argparse.Namespace) -> int:
    from stackops.openstack.registration import DomainAdmin, ensure_domain_admin

    setup = DomainAdmin(args.domain, args.user, args.description, tuple(args.role or ()))
    return _keystone_admin_job(
        "create-domain-admin",
        args.region,
        "STACKOPS_DOMAIN_ADMIN_PASSWORD",
        lambda conn, password: ensure_domain_admin(conn, setup, password),
    )


def cmd_create_share_type(args: argparse.Namespace) -> int:
    from stackops.openstack.share_types import ensure_share_type

    specs: dict[str, str] = {}
    for pair in args.extra_spec or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError([f"--extra-spec: {pair!r} is not KEY=VALUE"])
        specs[key] = value
    return _keystone_admin_job(
        "create-share-type", args.region, "", lambda conn, _password: ensure_share_type(conn, args.name, specs)
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="stackops", description="Deploy, run and upgrade OpenStack on Kubernetes.")
    top.add_argument("--version", action="version", version=f"stackops {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser("render", help="print every object of a cloud, in the order they are applied")
    render.add_argument("-f", "--file", required=True, help="OpenStackCloud YAML file, or - for stdin")
    render.add_argument("--service", help="only this service's objects")
    render.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    render.add_argument("--operator-image", default=default_operator_image(), help="image of stackops Jobs")
    render.set_defaults(func=cmd_render)

    validate = commands.add_parser("validate", help="check an OpenStackCloud file without a cluster")
    validate.add_argument("-f", "--file", required=True)
    validate.set_defaults(func=cmd_validate)

    flows = commands.add_parser("flows", help="print the connections a cloud's NetworkPolicies allow (Markdown)")
    flows.add_argument("-f", "--file", required=True, help="OpenStackCloud YAML file, or - for stdin")
    flows.add_argument("--doc", help="rewrite the generated table of this Markdown file instead")
    flows.set_defaults(func=cmd_flows)

    crds = commands.add_parser("crds", help="write the CustomResourceDefinitions")
    crds.add_argument("--output-dir", required=True)
    crds.set_defaults(func=cmd_crds)

    docs = commands.add_parser("docs", help="write the OpenStackCloud reference (Markdown)")
    docs.add_argument("--output", required=True)
    docs.set_defaults(func=cmd_docs)

    operator = commands.add_parser("operator", help="run the operator")
    operator.add_argument(
        "-n", "--namespace", action="append", help="watch only this namespace (repeatable); default: all"
    )
    operator.add_argument("--no-leader-election", action="store_true", help="for a single replica run by hand")
    operator.add_argument("--lease-namespace", default="default", help="where the leader Lease lives outside a pod")
    operator.add_argument("--health-port", type=int, default=8080)
    operator.add_argument("--kubeconfig", help="when running outside the cluster (default: in-cluster, or $KUBECONFIG)")
    operator.add_argument("--metrics-port", type=int, help="Prometheus /metrics port, 0 for none (default 9090)")
    operator.add_argument("--log-format", choices=("text", "json"), help="log lines as text (default) or JSON")
    operator.add_argument(
        "--keystone-url",
        action="append",
        metavar="[NAMESPACE/NAME=]URL",
        help="reach OpenStack here instead of the cloud's internal keystone endpoint (outside the cluster); "
        "for every cloud, or for one (repeatable)",
    )
    operator.add_argument(
        "--openstack-interface", choices=("internal", "public"), help="catalog endpoints to check (default internal)"
    )
    operator.add_argument(
        "--no-openstack-checks",
        action="store_true",
        help="Kubernetes-layer health only, where no OpenStack runs behind the pods (e.g. kwok)",
    )
    operator.add_argument("--health-interval", type=float, help="seconds between health checks (default 30)")
    operator.add_argument("--check-timeout", type=float, help="longest one health check may take (default 10)")
    operator.set_defaults(func=cmd_operator)

    dev = commands.add_parser("dev", help="a local Kubernetes control plane to try stackops on")
    register_dev_cluster(dev.add_subparsers(dest="dev", required=True, metavar="COMMAND"))

    status = commands.add_parser("status", help="each cloud's services: phase, ready, health, release, message")
    status.add_argument("name", nargs="?", help="one cloud; default: every cloud in the namespace")
    status.add_argument("-n", "--namespace", default="default")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    status.add_argument("-o", "--output", choices=("table", "json"), default="table")
    status.add_argument("-w", "--watch", action="store_true", help="keep updating the table")
    status.add_argument("--kubeconfig", help="default: in-cluster, or $KUBECONFIG")
    status.set_defaults(func=cmd_status)

    events = commands.add_parser("events", help="a cloud's recent Events")
    events.add_argument("name")
    events.add_argument("-n", "--namespace", default="default")
    events.add_argument("--kubeconfig", help="default: in-cluster, or $KUBECONFIG")
    events.set_defaults(func=cmd_events)

    clouds = commands.add_parser(
        "clouds-yaml", help="a cloud's admin credentials as clouds.yaml (for openstack --os-cloud NAME)"
    )
    clouds.add_argument("name")
    clouds.add_argument("-n", "--namespace", default="default")
    clouds.add_argument("--cloud", help="the entry's name in clouds.yaml (default: the cloud's name)")
    clouds.add_argument("-o", "--output", help="write to this file (mode 0600) instead of stdout")
    clouds.add_argument(
        "--ca-file",
        help="where to write the cloud's CA, when its endpoints serve its certificates (default: beside "
        "--output, its name ending .ca.crt)",
    )
    clouds.add_argument("--kubeconfig", help="default: in-cluster, or $KUBECONFIG")
    clouds.set_defaults(func=cmd_clouds_yaml)

    rbac = commands.add_parser("rbac", help="print the ClusterRole the operator needs")
    rbac.add_argument("--name", default="stackops-operator")
    rbac.set_defaults(func=cmd_rbac)

    register_demo(commands)

    job = commands.add_parser("job", help="work stackops Jobs run inside the cluster")
    jobs = job.add_subparsers(dest="job", required=True, metavar="JOB")
    # where a database Job connects, and as whom; the same for the management API of RabbitMQ's Jobs
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--host", required=True)
    database.add_argument("--port", type=int, default=3306)
    database.add_argument("--user", required=True)
    management = argparse.ArgumentParser(add_help=False)
    management.add_argument("--host", required=True)
    management.add_argument("--management-port", type=int, default=15672)
    management.add_argument("--user", required=True)
    create_db = jobs.add_parser(
        "create-database",
        parents=[database],
        help="create databases and their account (admin and account passwords from the environment; "
        "STACKOPS_DB_OLD_PASSWORD, when set, is accepted too)",
    )
    create_db.add_argument("--database", action="append", required=True)
    create_db.set_defaults(func=cmd_create_database)
    set_db = jobs.add_parser(
        "set-database-password",
        parents=[database],
        help="set the password of existing database accounts (MariaDB's root during a credential rotation; "
        "passwords from the environment as for create-database)",
    )
    set_db.add_argument("--account-host", action="append", required=True, help="'%%' or localhost; repeated")
    set_db.set_defaults(func=cmd_set_database_password)
    mq = jobs.add_parser(
        "create-messaging-user",
        parents=[management],
        help="create a RabbitMQ user and vhost (admin and user passwords from the environment)",
    )
    mq.add_argument("--vhost", required=True)
    mq.add_argument("--remove-user", help="a user to remove: the other of the pair, after a credential rotation")
    mq.set_defaults(func=cmd_create_messaging_user)
    mq_admin = jobs.add_parser(
        "create-messaging-admin",
        parents=[management],
        help="give a RabbitMQ administrator a password, as another administrator (RabbitMQ's admin during a "
        "credential rotation; passwords from the environment as for create-messaging-user)",
    )
    mq_admin.add_argument("--remove-user", help="an administrator to remove: the other of the pair, at the end")
    mq_admin.set_defaults(func=cmd_create_messaging_admin)
    reg = jobs.add_parser(
        "register-service",
        help="register a service with keystone: user, roles, catalog entry, endpoints (admin from "
        "OS_AUTH_URL/OS_USERNAME/OS_PASSWORD, the service's password from STACKOPS_SERVICE_PASSWORD)",
    )
    reg.add_argument("--region", required=True)
    reg.add_argument("--type", help="service type, e.g. placement; none: the user alone (a service without an API)")
    reg.add_argument("--name", required=True)
    reg.add_argument("--description", default="")
    reg.add_argument("--public-url")
    reg.add_argument("--internal-url")
    reg.add_argument("--user", required=True)
    reg.add_argument("--project", default="service")
    reg.add_argument("--remove-user", help="a user to remove: the other of the pair, after a credential rotation")
    reg.set_defaults(func=cmd_register_service)
    dereg = jobs.add_parser(
        "deregister-services",
        help="remove the catalog entries (and their endpoints) and the users stackops registered for "
        "services now disabled (keystone admin from OS_AUTH_URL/OS_USERNAME/OS_PASSWORD)",
    )
    dereg.add_argument("--region", required=True)
    dereg.add_argument(
        "--service", nargs=3, action="append", metavar=("TYPE", "NAME", "DESCRIPTION"), help="a catalog entry"
    )
    dereg.add_argument("--user", nargs=2, action="append", metavar=("DOMAIN", "NAME"), help="a service's user")
    dereg.set_defaults(func=cmd_deregister_services)
    domain = jobs.add_parser(
        "create-domain-admin",
        help="create a keystone domain, its admin user and roles a service expects (keystone admin from "
        "OS_AUTH_URL/OS_USERNAME/OS_PASSWORD, the domain admin's password from STACKOPS_DOMAIN_ADMIN_PASSWORD)",
    )
    domain.add_argument("--region", required=True)
    domain.add_argument("--domain", required=True)
    domain.add_argument("--description", default="")
    domain.add_argument("--user", required=True)
    domain.add_argument("--role", action="append", help="a role that must exist (repeatable)")
    domain.set_defaults(func=cmd_create_domain_admin)
    share_type = jobs.add_parser(
        "create-share-type",
        help="create a public manila share type with its extra specs, or bring them in line (keystone admin from "
        "OS_AUTH_URL/OS_USERNAME/OS_PASSWORD)",
    )
    share_type.add_argument("--region", required=True)
    share_type.add_argument("--name", required=True)
    share_type.add_argument("--extra-spec", action="append", metavar="KEY=VALUE", help="an extra spec (repeatable)")
    share_type.set_defaults(func=cmd_create_share_type)
    for name, helps in (
        ("backup-upload", "upload the backups of a directory an S3 bucket lacks, then apply its retention"),
        ("backup-download", "download one backup from an S3 bucket into a directory"),
    ):
        store = jobs.add_parser(
            name,
            help=f"{helps} (keys from STACKOPS_S3_ACCESS_KEY_ID and STACKOPS_S3_SECRET_ACCESS_KEY, "
            "a CA bundle from the file STACKOPS_S3_CA_BUNDLE_FILE names)",
        )
        store.add_argument("directory")
        if name == "backup-download":
            store.add_argument("name", help="the backup's name")
        store.add_argument("--endpoint", required=True)
        store.add_argument("--bucket", required=True)
        store.add_argument("--region", required=True)
        store.add_argument("--prefix", required=True)
        store.add_argument("--addressing-style", choices=("Path", "VirtualHosted"), default="Path")
        if name == "backup-upload":
            store.add_argument("--retention", type=int, required=True)
        store.set_defaults(func=cmd_backup_upload if name == "backup-upload" else cmd_backup_download)
    rings = jobs.add_parser(
        "store-rings", help="store swift's rings and builder files of a directory in their Secret (in-cluster)"
    )
    rings.add_argument("--namespace", required=True)
    rings.add_argument("--secret", required=True)
    rings.add_argument("--directory", required=True)
    rings.set_defaults(func=cmd_store_rings)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except (UserError, DevClusterError) as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
