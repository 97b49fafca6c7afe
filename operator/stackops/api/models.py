"""The OpenStackCloud custom resource, modelled once.

These models are the single source of the API: the CRD schema (crds/) is generated from them, the
CLI validates files with them, and the operator loads every object through them. Field names are
camelCase on the wire (Kubernetes convention) and snake_case in Python.

Defaults live here rather than in the CRD (except `release`), so a newer stackops can improve a
default without rewriting stored objects. `release` is defaulted by the API server on purpose: a
cloud must stay on the release it was created with even when a newer operator defaults to a newer one.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from stackops.api.cron import schedule_problem
from stackops.api.oslo import check_ini_shape
from stackops.api.releases import DEFAULT_RELEASE, SUPPORTED_RELEASES, transition_problem
from stackops.api.schema_hints import FREE_FORM, INT_OR_STRING

GROUP = "stackops.dev"
VERSION = "v1alpha1"
KIND = "OpenStackCloud"
PLURAL = "openstackclouds"

# Kubernetes names: the cloud name prefixes every child object, so it must make valid DNS-1035
# labels (Services) with room for suffixes like "-keystone-db-sync-1a2b3c4d".
CLOUD_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
CLOUD_NAME_MAX = 30

# Kubernetes' own quantity syntax (resource.Quantity): checked here and by the CRD's pattern, so a
# quantity the API server would refuse in a Deployment is refused before anything is applied.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# names of other objects (Secrets, StorageClasses): DNS-1123 subdomains
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def _quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not re.match(QUANTITY_PATTERN, value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 10Gi)")
    return value


def _object_name(value: str) -> str:
    if len(value) > 253 or not re.match(OBJECT_NAME_PATTERN, value):
        raise ValueError(f"{value!r} is not a Kubernetes object name (lowercase letters, digits, '-' and '.')")
    return value


Quantity = Annotated[
    int | str,
    Field(json_schema_extra={**INT_OR_STRING, "pattern": QUANTITY_PATTERN}),
    AfterValidator(_quantity),
]
Size = Annotated[str, Field(json_schema_extra={"pattern": QUANTITY_PATTERN}), AfterValidator(_quantity)]
ObjectName = Annotated[
    str, Field(json_schema_extra={"pattern": OBJECT_NAME_PATTERN, "maxLength": 253}), AfterValidator(_object_name)
]
# oslo overrides: {section: {option: value}}; the only free-form part of the API.
OsloConfig = Annotated[dict[str, dict[str, Any]], Field(json_schema_extra=FREE_FORM)]


def _fits_ini(value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    problems = check_ini_shape(value)
    if problems:
        raise ValueError("; ".join(problems))
    return value


# oslo.config overrides checked at load time: every value must be one an INI file can hold
IniOverrides = Annotated[OsloConfig, AfterValidator(_fits_ini)]

PERCENTAGE_PATTERN = re.compile(r"^(100|[1-9][0-9]?)%$")


def _some_nodes(value: int | str) -> int | str:
    """A DaemonSet's maxUnavailable that lets a rollout move: at least one node, or 1% to 100%."""
    if isinstance(value, int) and value >= 1:
        return value
    if isinstance(value, str) and PERCENTAGE_PATTERN.match(value):
        return value
    raise ValueError(f"{value!r} is neither a number of nodes (at least 1) nor a percentage from 1% to 100%")


NodeCount = Annotated[int | str, Field(json_schema_extra=INT_OR_STRING), AfterValidator(_some_nodes)]


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )


class ResourceRequirements(ApiModel):
    """Kubernetes compute resources of one container."""

    requests: dict[str, Quantity] = Field(default_factory=dict, description="Minimum resources, e.g. {cpu: 100m}.")
    limits: dict[str, Quantity] = Field(default_factory=dict, description="Maximum resources.")


class SecretRef(ApiModel):
    name: ObjectName = Field(description="Name of a Secret in the cloud's namespace.")


class Storage(ApiModel):
    size: Size = Field("10Gi", description="Requested PVC size.")
    storage_class_name: ObjectName | None = Field(None, description="StorageClass; the cluster default when unset.")


class ExternalDatabase(ApiModel):
    """A MariaDB/MySQL server stackops does not run. The Secret holds `username` and `password` of an
    account allowed to create databases and users."""

    host: str = Field(min_length=1)
    port: int = Field(3306, ge=1, le=65535)
    secret_ref: SecretRef


class ExternalMessaging(ApiModel):
    """A RabbitMQ stackops does not run. The Secret holds `username` and `password` of an administrator."""

    host: str = Field(min_length=1)
    port: int = Field(5672, ge=1, le=65535)
    management_port: int = Field(15672, ge=1, le=65535, description="HTTP management API (users, vhosts).")
    secret_ref: SecretRef


class WorkloadSpec(ApiModel):
    """What every deployable part of a cloud shares."""

    replicas: int = Field(1, ge=1, le=9)
    resources: dict[str, ResourceRequirements] = Field(
        default_factory=dict,
        description="Per-component resource overrides, keyed by component name (e.g. api, db-sync).",
    )
    images: dict[str, str] = Field(
        default_factory=dict,
        description="Image overrides keyed by Kolla image name (e.g. keystone: registry/keystone:tag).",
    )


def _schedule(value: str) -> str:
    problem = schedule_problem(value)
    if problem:
        raise ValueError(problem)
    return value


CronSchedule = Annotated[str, Field(min_length=1), AfterValidator(_schedule)]
# a backup's name: the UTC time it began, as the backup Job writes it
BACKUP_NAME_PATTERN = r"^[0-9]{8}T[0-9]{6}Z$"


def _backup_name(value: str) -> str:
    if not re.match(BACKUP_NAME_PATTERN, value):
        raise ValueError(f"{value!r} is not a backup's name (its UTC time, e.g. 20260131T023000Z)")
    return value


BackupName = Annotated[str, Field(json_schema_extra={"pattern": BACKUP_NAME_PATTERN}), AfterValidator(_backup_name)]


# S3's bucket names: 3 to 63 lowercase letters, digits, dots and hyphens, a letter or digit at each end
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# a key prefix: path segments without empty ones, no leading or trailing slash
PREFIX_PATTERN = r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$"


def _endpoint(value: str) -> str:
    if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", value):
        raise ValueError(f"{value!r} is not an http(s) URL of an S3 endpoint (e.g. https://s3.example.com)")
    return value.rstrip("/")


def _bucket(value: str) -> str:
    if not re.match(BUCKET_PATTERN, value) or ".." in value:
        raise ValueError(f"{value!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' and '-')")
    return value


def _prefix(value: str) -> str:
    if not re.match(PREFIX_PATTERN, value) or any(part in (".", "..") for part in value.split("/")):
        raise ValueError(
            f"{value!r} is not a key prefix (path segments of letters, digits and !_.*'()-, no '/' at the ends)"
        )
    return value


class ObjectStore(ApiModel):
    """An S3 bucket that keeps the backups too: Amazon S3, Ceph RGW, MinIO, or Swift through its S3
    API (s3api; a cloud's own Swift with EC2 credentials from keystone). Each backup is uploaded once
    it is on the volume, by a second container of the backup Job (stackops' image, boto3), and the
    bucket keeps the newest `retention` of them. A restore may take a backup from here
    (`restore.source: ObjectStore`), also into a new cloud whose volume never had it."""

    endpoint: Annotated[str, AfterValidator(_endpoint)] = Field(
        description="The S3 endpoint's URL, e.g. https://s3.eu-west-1.amazonaws.com or https://swift.example.com.",
        json_schema_extra={"pattern": r"^https?://"},
    )
    bucket: Annotated[str, AfterValidator(_bucket)] = Field(
        description="The bucket, which must exist.", json_schema_extra={"pattern": BUCKET_PATTERN}
    )
    region: str = Field("us-east-1", min_length=1, description="The region requests are signed for.")
    prefix: Annotated[str, AfterValidator(_prefix)] | None = Field(
        None,
        description="Where in the bucket the backups go (keys `<prefix>/<backup>.<extension>`); default "
        "`<namespace>/<cloud>/<set>`, the set `database` or `ovn`. A restore into a cloud of another name "
        "sets the first cloud's.",
    )
    secret_ref: SecretRef = Field(
        description="Secret with the S3 credentials: keys `accessKeyId` and `secretAccessKey`. Given to the "
        "Jobs as files, never as environment."
    )
    ca_secret_ref: SecretRef | None = Field(
        None,
        description="Secret whose `ca.crt` holds the CA certificates (PEM) the endpoint's certificate is "
        "checked against, instead of the image's public ones. The certificate is always verified.",
    )
    addressing_style: Literal["Path", "VirtualHosted"] = Field(
        "Path",
        description="Path: https://endpoint/bucket/key (what Swift, Ceph RGW and MinIO take); VirtualHosted: "
        "https://bucket.endpoint/key.",
    )
    retention: int | None = Field(
        None, ge=1, le=1000, description="How many backups the bucket keeps; the volume's retention by default."
    )


class ScheduledBackup(ApiModel):
    """What every scheduled backup of stackops takes: when, how many stay, and their volume."""

    enabled: bool = False
    schedule: CronSchedule = Field(
        "30 2 * * *", description="When backups run: a cron schedule in UTC (default daily at 02:30)."
    )
    retention: int = Field(7, ge=1, le=1000, description="How many backups the volume keeps; older ones go.")
    storage: Storage = Field(default_factory=lambda: Storage(size="20Gi"), description="The backups' volume.")
    object_store: ObjectStore | None = Field(
        None, description="An S3 bucket each backup is also uploaded to, and a restore may take it from."
    )


class DatabaseBackup(ScheduledBackup):
    """Scheduled consistent backups of the cloud's databases: a logical dump (mariadb-dump in one
    transaction), compressed onto a volume of its own, with a manifest (time, size, SHA-256) beside
    each. A dump restores on the same or a later MariaDB, into one server or a Galera cluster."""


class OvnBackup(ScheduledBackup):
    """Scheduled backups of OVN's northbound and southbound databases: a snapshot of each (ovsdb-client
    backup, from any member connected to its cluster), both in one compressed archive on a volume of
    its own, with a manifest (time, size, SHA-256) beside it."""

    storage: Storage = Field(default_factory=lambda: Storage(size="1Gi"), description="The backups' volume.")


class Restore(ApiModel):
    """A backup to restore, and where it is."""

    backup: BackupName = Field(description="The backup's name, as status.<set>.backup.last shows them.")
    source: Literal["Volume", "ObjectStore"] = Field(
        "Volume",
        description="Volume: the backups' volume; ObjectStore: the bucket of backup.objectStore (downloaded, "
        "its checksum checked against its manifest, before anything is touched).",
    )


class DatabaseRestore(Restore):
    """Restore the cloud's databases from a backup: the services that use them are stopped, the
    backup is restored, and they stay stopped until this field is removed (status.database.restore
    says where it is)."""

    backup: BackupName = Field(description="The backup's name, as status.database.backup.last shows them.")


class OvnRestore(Restore):
    """Restore OVN's northbound database from a backup: neutron's server and workers are stopped, the
    backup replaces the database's contents (one transaction, every member), then neutron's OVN sync
    (neutron-ovn-db-sync-util in repair mode) puts back what neutron made since the backup; neutron
    stays stopped until this field is removed (status.ovn.restore says where it is). The southbound
    database is not restored: northd derives it from the northbound one, the chassis report the rest."""

    backup: BackupName = Field(description="The backup's name, as status.ovn.backup.last shows them.")


class ReplicaPlacement(ApiModel):
    """Mixed into the spec of a replicated backend (`class XSpec(ReplicaPlacement, WorkloadSpec)`): how
    its replicas keep off each other's nodes."""

    anti_affinity: Literal["Preferred", "Required"] = Field(
        "Preferred",
        description="Preferred: replicas go to different nodes (kubernetes.io/hostname) where the nodes "
        "allow, and still all run when there are fewer nodes than replicas. Required: never two on one "
        "node, so that losing a node loses one member at most; a replica without a node of its own stays "
        "Pending, so the cloud needs as many nodes matching spec.nodes.controlPlane as replicas.",
    )


class DatabaseSpec(ReplicaPlacement, WorkloadSpec):
    """MariaDB: one server, or a Galera cluster when replicas > 1."""

    replicas: int = Field(
        1,
        ge=1,
        le=9,
        description="1 for a single server, 3 or more for a Galera cluster (2 cannot keep quorum).",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self == 1 || self >= 3",
                    "message": "a Galera cluster needs 1 or at least 3 replicas",
                }
            ]
        },
    )
    storage: Storage = Field(default_factory=Storage)
    external: ExternalDatabase | None = Field(None, description="Use an existing database server instead.")
    config: OsloConfig = Field(default_factory=dict, description="my.cnf overrides: {section: {option: value}}.")
    backup: DatabaseBackup = Field(default_factory=DatabaseBackup)
    restore: DatabaseRestore | None = Field(
        None, description="Restore a backup; the services stay stopped until this is removed again."
    )

    @field_validator("replicas")
    @classmethod
    def _galera_quorum(cls, value: int) -> int:
        if value == 2:
            raise ValueError("a Galera cluster needs 1 or at least 3 replicas (2 cannot keep quorum)")
        return value


class MessagingSpec(ReplicaPlacement, WorkloadSpec):
    """RabbitMQ."""

    storage: Storage = Field(default_factory=lambda: Storage(size="2Gi"))
    external: ExternalMessaging | None = Field(None, description="Use an existing RabbitMQ instead.")


class MemcachedSpec(ReplicaPlacement, WorkloadSpec):
    memory_mb: int = Field(256, ge=16, description="Cache size per replica in MiB.")


class InfrastructureSpec(ApiModel):
    database: DatabaseSpec = Field(default_factory=DatabaseSpec)
    messaging: MessagingSpec = Field(default_factory=MessagingSpec)
    memcached: MemcachedSpec = Field(default_factory=MemcachedSpec)


class EndpointOverrides(ApiModel):
    """Catalog URLs to register instead of the derived ones (e.g. behind an external load balancer)."""

    public: str | None = None
    internal: str | None = None


class ServiceSpec(WorkloadSpec):
    """An OpenStack service."""

    enabled: bool = True
    config: IniOverrides = Field(
        default_factory=dict,
        description="oslo.config overrides of the service's main file: {section: {option: value}}. "
        "Lists become comma-separated values; {type: multistring, values: [...]} repeats the option; "
        "null removes a default.",
    )
    endpoints: EndpointOverrides = Field(default_factory=EndpointOverrides)
    policy: dict[str, str] = Field(
        default_factory=dict,
        description='oslo.policy overrides: {rule: check string}, e.g. {"identity:list_projects": '
        '"role:admin"}; written to the service\'s policy.yaml. A rule the service does not define at the '
        "cloud's release is refused.",
    )
    enforce_scope: bool | None = Field(
        None,
        description="[oslo_policy] enforce_scope. Unset: the service's default at the cloud's release "
        "(docs/policy.md lists them).",
    )
    enforce_new_defaults: bool | None = Field(
        None,
        description="[oslo_policy] enforce_new_defaults (false: the deprecated rules still allow too). "
        "Unset: the service's default at the cloud's release (docs/policy.md lists them).",
    )


class OptInService(ApiModel):
    """Mixed into the spec of a service stackops gains after clouds already exist (before its
    ServiceSpec: `class NewSpec(OptInService, ServiceSpec)`): the service is off until a spec turns
    it on, so that upgrading the operator does not start deploying it into every existing cloud."""

    enabled: bool = Field(
        False, description="Off unless set, so that clouds made before stackops had it do not start running it."
    )


class FernetSpec(ApiModel):
    max_active_keys: int = Field(3, ge=3, description="Keys kept: staged + primary + secondaries.")
    rotation_hours: int = Field(24, ge=1, description="Hours between fernet key rotations.")


class SecurityCompliance(ApiModel):
    """Keystone's account and password rules for local users ([security_compliance]), as audits ask
    for them. Unset fields keep keystone's defaults (no lockout, no expiry, no rules). The users the
    cloud runs on (admin, the services' users) are exempt from lockout, expiry and first-use changes,
    so a guessed password cannot lock the cloud out of itself."""

    lockout_failure_attempts: int | None = Field(
        None, ge=1, description="Failed logins in a row after which a user is locked."
    )
    lockout_duration_seconds: int = Field(
        1800, ge=1, description="How long a locked user stays locked (with lockoutFailureAttempts)."
    )
    password_expires_days: int | None = Field(None, ge=1, description="Days a password is valid.")
    unique_last_password_count: int | None = Field(
        None, ge=1, description="A user's new password must differ from this many of their last ones."
    )
    minimum_password_age_days: int | None = Field(
        None, ge=0, description="Days before a user may change their password again."
    )
    password_regex: str | None = Field(
        None,
        description="Passwords must match this regular expression (Python's re.match). It must accept "
        "the passwords stackops generates: 32 letters and digits, with a lowercase letter, an uppercase "
        "letter and a digit.",
    )
    password_regex_description: str | None = Field(
        None, description="What passwordRegex asks for, in words: shown to users whose password fails it."
    )
    change_password_upon_first_use: bool = Field(
        False, description="Users must change a password an administrator set before using it."
    )
    disable_user_account_days_inactive: int | None = Field(
        None, ge=1, description="Users who have not logged in for this many days are disabled."
    )

    @field_validator("password_regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a regular expression: {error}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SecurityCompliance:
        if self.password_regex and not self.password_regex_description:
            raise ValueError("passwordRegexDescription: required with passwordRegex (users are told it)")
        if (
            self.minimum_password_age_days is not None
            and self.password_expires_days is not None
            and self.minimum_password_age_days >= self.password_expires_days
        ):
            raise ValueError("minimumPasswordAgeDays: must be less than passwordExpiresDays")
        return self


class KeystoneSpec(ServiceSpec):
    fernet: FernetSpec = Field(default_factory=FernetSpec)
    security_compliance: SecurityCompliance = Field(default_factory=SecurityCompliance)


class RbdStore(ApiModel):
    pool: str = "images"
    user: str = "glance"
    secret_ref: SecretRef = Field(
        description="Secret with the Ceph client's files: keys `ceph.conf` and `keyring` (the user's keyring)."
    )


class GlanceBackend(ApiModel):
    """Where images are stored: a PVC (default) or Ceph RBD."""

    type: Literal["pvc", "rbd"] = "pvc"
    size: Size = Field("50Gi", description="PVC size (pvc).")
    storage_class_name: ObjectName | None = None
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = Field(
        "ReadWriteOnce", description="ReadWriteMany lets several API replicas share the store."
    )
    rbd: RbdStore | None = None

    @property
    def driver(self) -> str:
        """glance_store's driver of this store: `file` for a PVC, `rbd` for Ceph (and the default
        store's id in glance)."""
        return "file" if self.type == "pvc" else "rbd"

    @model_validator(mode="after")
    def _rbd_needs_settings(self) -> GlanceBackend:
        if self.type == "rbd" and self.rbd is None:
            raise ValueError("rbd: required when type is rbd")
        return self


class GlanceStore(GlanceBackend):
    """A further image store beside `backend`, e.g. a second Ceph cluster or a PVC on other disks:
    images are uploaded to one store and copied to others with the copy-image import."""

    name: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")] = Field(
        description="The store's id in glance (`stores` of an image, `X-Image-Meta-Store` on upload)."
    )
    description: str | None = Field(None, description="Shown to users by GET /v2/info/stores.")


ImportMethod = Literal["glance-direct", "web-download", "copy-image"]


def _only_uploads() -> list[ImportMethod]:
    return ["glance-direct"]


class WebDownload(ApiModel):
    """Which URLs the web-download import may fetch ([import_filtering_opts]): glance fetches them
    from inside the cluster, so the defaults allow only http(s) on ports 80 and 443."""

    allowed_schemes: list[str] = Field(default_factory=lambda: ["http", "https"])
    disallowed_schemes: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(default_factory=list, description="Only these hosts (empty: any).")
    disallowed_hosts: list[str] = Field(default_factory=list)
    allowed_ports: list[int] = Field(default_factory=lambda: [80, 443])
    disallowed_ports: list[int] = Field(default_factory=list)


class ImageCache(ApiModel):
    """Glance's image cache: images read once from a store are served again from the API pod's own
    disk (an emptyDir). A sidecar prunes the cache to `maxSizeGiB` and removes stalled partial images."""

    enabled: bool = False
    max_size_gib: int = Field(10, ge=1, alias="maxSizeGiB", description="Size the pruner brings the cache back to.")
    stall_time_seconds: int = Field(86400, ge=60, description="A partial image untouched this long is removed.")
    prune_interval_seconds: int = Field(600, ge=60, description="How often the cache is pruned and cleaned.")


class GlanceSpec(ServiceSpec):
    backend: GlanceBackend = Field(default_factory=GlanceBackend)
    stores: list[GlanceStore] = Field(
        default_factory=list, description="Further stores beside `backend` (which stays the default store)."
    )
    import_methods: list[ImportMethod] = Field(
        default_factory=_only_uploads,
        description="Interoperable image import methods users may call. web-download makes glance fetch "
        "URLs users give (see webDownload); copy-image needs a second store.",
    )
    web_download: WebDownload = Field(default_factory=WebDownload)
    image_cache: ImageCache = Field(default_factory=ImageCache)

    @model_validator(mode="after")
    def _shared_store_for_replicas(self) -> GlanceSpec:
        if self.backend.type == "pvc" and self.replicas > 1 and self.backend.access_mode != "ReadWriteMany":
            raise ValueError("replicas: more than 1 needs backend.accessMode ReadWriteMany (or an rbd backend)")
        for index, store in enumerate(self.stores):
            if store.type == "pvc" and self.replicas > 1 and store.access_mode != "ReadWriteMany":
                raise ValueError(f"stores[{index}].accessMode: ReadWriteMany is needed with more than 1 replica")
        return self

    @model_validator(mode="after")
    def _stores_and_imports(self) -> GlanceSpec:
        require_unique("stores[].name", [self.backend.driver, *(s.name for s in self.stores)])
        require_unique("importMethods", list(self.import_methods))
        if "copy-image" in self.import_methods and not self.stores:
            raise ValueError("importMethods: copy-image copies between stores; it needs a second one in stores")
        return self


# Names that become parts of object names (compute groups, backends): short DNS labels.
SHORT_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
ShortName = Annotated[str, Field(min_length=1, max_length=16, pattern=SHORT_NAME_PATTERN)]


def require_unique(what: str, values: list[str]) -> None:
    """Names that become object names or map keys must not repeat."""
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique (repeated: {', '.join(repeated)})")


class NodeSelector(ApiModel):
    match_labels: dict[str, str] = Field(default_factory=dict)


class AgentNodes(NodeSelector):
    """Nodes of a role that runs host agents (DaemonSets)."""

    max_unavailable: NodeCount = Field(
        1,
        description="How many of these nodes may have their agents restarting at once (config changes, "
        "upgrades): a number, or a percentage of the nodes such as '10%'.",
    )
    min_ready_percent: int = Field(
        90,
        ge=1,
        le=100,
        description="The share of these nodes whose agents must be ready for a step (and the cloud) to be "
        "ready, rounded up: with 1000 hypervisors one broken host does not hold the cloud back. Below it, "
        "a deploying cloud waits and a converged one is Degraded; status.hosts shows ready/total per agent.",
    )


class ComputeGroup(ApiModel):
    """Hypervisors that differ from the rest (hardware, overcommit, …): their own DaemonSet and config."""

    name: ShortName
    node_selector: NodeSelector = Field(description="Labels of the group's nodes (among the compute nodes).")
    config: IniOverrides = Field(default_factory=dict, description="nova.conf overrides for this group's agents.")

    @field_validator("node_selector")
    @classmethod
    def _selects_something(cls, value: NodeSelector) -> NodeSelector:
        if not value.match_labels:
            raise ValueError("matchLabels: at least one label is needed to tell the group's nodes apart")
        return value


MaintenancePolicy = Literal["LiveMigrate", "ColdMigrate", "Stop", "Leave"]


class ComputeMaintenance(ApiModel):
    """How a compute node marked for maintenance (annotation stackops.dev/maintenance=true) is drained
    (docs/operations.md). A server's metadata `stackops:maintenance-policy` overrides the policy."""

    policy: MaintenancePolicy = Field(
        "LiveMigrate",
        description="What happens to each server: LiveMigrate (a stopped one is cold-migrated), ColdMigrate, "
        "Stop (it stays, powered off), Leave (it stays as it is).",
    )
    concurrency: int = Field(2, ge=1, le=32, description="Servers moved or stopped at once, per node.")
    timeout: int = Field(
        900, ge=10, description="Seconds a server's move or stop may take; longer is reported as failed, not retried."
    )


class ComputeSpec(ApiModel):
    """The agents on hypervisors: nova-compute and libvirt, one DaemonSet per group; and the day-2
    operations on compute nodes (maintenance, removal, dead hosts: docs/operations.md)."""

    virt_type: Literal["kvm", "qemu"] = Field("kvm", description="qemu for nodes without hardware virtualisation.")
    config: OsloConfig = Field(default_factory=dict, description="nova.conf overrides for every compute agent.")
    groups: list[ComputeGroup] = Field(
        default_factory=list,
        description="Compute groups; a node matching several belongs to the first. Others use the defaults.",
    )
    maintenance: ComputeMaintenance = Field(default_factory=ComputeMaintenance)
    dead_host_grace_seconds: int = Field(
        300,
        ge=30,
        description="A compute node NotReady this long counts as dead: its nova-compute is marked forced down.",
    )
    evacuate: bool = Field(
        False,
        description="Evacuate the servers of a dead compute node to other hosts (rebuilt from their image or "
        "volume). Off: the dead host is only reported.",
    )

    @field_validator("groups")
    @classmethod
    def _unique_names(cls, value: list[ComputeGroup]) -> list[ComputeGroup]:
        require_unique("group names", [g.name for g in value])
        return value


class NovaSpec(ServiceSpec):
    compute: ComputeSpec = Field(default_factory=ComputeSpec)


class ProviderNetwork(ApiModel):
    """A physical network instances can attach to: an OVS bridge on every network node, mapped to a name."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="physnet name.")
    bridge: str = Field("br-ex", min_length=1, max_length=15, pattern=r"^[A-Za-z0-9_.-]+$")
    interface: str | None = Field(None, description="Host interface added to the bridge; none: left to the host.")


class OvnSpec(ReplicaPlacement):
    """The OVN northbound and southbound databases (a Raft cluster when replicas > 1) and northd."""

    replicas: int = Field(
        1,
        ge=1,
        le=7,
        description="1, or 3 or more for a Raft cluster (2 cannot keep quorum).",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == 1 || self >= 3", "message": "an OVN Raft cluster needs 1 or at least 3 replicas"}
            ]
        },
    )
    storage: Storage = Field(default_factory=lambda: Storage(size="1Gi"))
    backup: OvnBackup = Field(default_factory=OvnBackup)
    restore: OvnRestore | None = Field(
        None, description="Restore the northbound database; neutron stays stopped until this is removed again."
    )
    datapath_type: Literal["system", "netdev"] = Field(
        "system",
        description="Open vSwitch datapath of every chassis bridge (br-int and the provider bridges): `system` "
        "is the kernel's openvswitch module; `netdev` the userspace datapath, for hosts without that module "
        "(much slower: for test machines and nested labs; it turns on Open vSwitch's userspace-tso-enable, "
        "without which its conntrack drops guests' checksum-offloaded connections).",
    )

    @field_validator("replicas")
    @classmethod
    def _raft_quorum(cls, value: int) -> int:
        if value == 2:
            raise ValueError("an OVN Raft cluster needs 1 or at least 3 replicas (2 cannot keep quorum)")
        return value


class NeutronSpec(ServiceSpec):
    ovn: OvnSpec = Field(default_factory=OvnSpec)
    provider_networks: list[ProviderNetwork] = Field(
        default_factory=lambda: [ProviderNetwork(name="physnet1")],
        description="Physical networks and the OVS bridges they map to (bridge mappings).",
    )

    @field_validator("provider_networks")
    @classmethod
    def _unique_physnets(cls, value: list[ProviderNetwork]) -> list[ProviderNetwork]:
        for attribute in ("name", "bridge"):
            require_unique(f"provider network {attribute}s", [getattr(n, attribute) for n in value])
        return value


class NfsShares(ApiModel):
    shares: list[str] = Field(min_length=1, description="NFS exports, host:/path.")
    mount_options: str | None = None


class LvmVolumes(ApiModel):
    volume_group: str = Field("cinder-volumes", description="LVM volume group on each storage node.")


class CinderBackend(ApiModel):
    """One volume backend: LVM on storage nodes, Ceph RBD, or NFS."""

    name: ShortName
    type: Literal["lvm", "rbd", "nfs"]
    lvm: LvmVolumes | None = None
    rbd: RbdStore | None = None
    nfs: NfsShares | None = None

    @model_validator(mode="after")
    def _settings_for_type(self) -> CinderBackend:
        if self.type == "rbd" and self.rbd is None:
            raise ValueError("rbd: required when type is rbd")
        if self.type == "nfs" and self.nfs is None:
            raise ValueError("nfs: required when type is nfs")
        return self


class CinderBackup(ApiModel):
    enabled: bool = False
    type: Literal["nfs", "rbd"] = "nfs"
    nfs: NfsShares | None = None
    rbd: RbdStore | None = None

    @model_validator(mode="after")
    def _settings_for_type(self) -> CinderBackup:
        if self.enabled and getattr(self, self.type) is None:
            raise ValueError(f"{self.type}: required when backup is enabled with type {self.type}")
        return self


class CinderSpec(ServiceSpec):
    backends: list[CinderBackend] = Field(
        default_factory=lambda: [CinderBackend(name="lvm", type="lvm", lvm=LvmVolumes())],
        min_length=1,
        description="Volume backends; LVM runs on the storage nodes.",
    )
    backup: CinderBackup = Field(default_factory=CinderBackup)

    @field_validator("backends")
    @classmethod
    def _unique_backends(cls, value: list[CinderBackend]) -> list[CinderBackend]:
        require_unique("backend names", [b.name for b in value])
        return value


class HorizonSpec(WorkloadSpec):
    """The dashboard. Its settings are Django settings (local_settings.py), not oslo.config."""

    enabled: bool = True
    endpoints: EndpointOverrides = Field(default_factory=EndpointOverrides)
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Django settings added to local_settings.py: {NAME: value} (JSON values).",
        json_schema_extra=FREE_FORM,
    )

    @field_validator("settings")
    @classmethod
    def _setting_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(k for k in value if not k.isidentifier() or not k.isupper())
        if bad:
            raise ValueError(f"setting names are upper-case Python identifiers (not: {', '.join(bad)})")
        return value


class BarbicanSpec(OptInService, ServiceSpec):
    """Key management: secrets kept encrypted in barbican's database by its simple_crypto plugin,
    under a key-encryption key stackops generates into the credentials Secret. An HSM (PKCS#11) or
    Vault instead is set through `config` (docs/barbican.md)."""


class Bind9Spec(ApiModel):
    """The BIND 9 server designate manages: the cloud's authoritative DNS server."""

    storage: Storage = Field(
        default_factory=lambda: Storage(size="1Gi"), description="Its zones, kept across restarts."
    )


class DesignateSpec(OptInService, ServiceSpec):
    """DNS as a service: zones and records in designate, served by a BIND 9 server stackops runs;
    neutron publishes ports' and floating IPs' names there."""

    nameservers: list[str] = Field(
        default_factory=list,
        description="Names of the zones' NS records, fully qualified (ns1.example.com.). Default: the BIND "
        "server's Service name in the cluster's DNS.",
    )
    dns_domain: str = Field(
        "openstack.internal.",
        pattern=r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+$",
        description="neutron's dns_domain: the domain of ports' DNS names inside networks.",
    )
    bind9: Bind9Spec = Field(default_factory=Bind9Spec)

    @field_validator("nameservers")
    @classmethod
    def _fully_qualified(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not name.endswith(".")]
        if bad:
            raise ValueError(f"nameservers are fully qualified, ending with a dot (not: {', '.join(bad)})")
        return value


class AmphoraSpec(ApiModel):
    """Octavia's amphora provider: each load balancer a service VM (haproxy in the amphora image) that
    nova boots on a management network, where octavia's worker drives it over TLS and its health
    manager hears its heartbeats. The network, image, flavor and certificates are the cloud's own,
    made once compute boots servers (docs/octavia.md)."""

    enabled: bool = Field(
        False, description="Offer the amphora provider beside OVN's (the default provider stays ovn)."
    )
    management_network: str | None = Field(
        None, min_length=1, description="ID of the neutron network the amphorae boot on (lb-mgmt-net)."
    )
    image_tag: str = Field("amphora", min_length=1, description="Glance tag of the amphora image.")
    flavor: str | None = Field(None, min_length=1, description="ID of the nova flavor of the amphorae.")
    security_groups: list[str] = Field(
        default_factory=list, description="IDs of the security groups of the amphorae's management ports."
    )
    health_manager_addresses: list[str] = Field(
        default_factory=list,
        description="ip:port on the management network where amphorae send heartbeats, routed to the "
        "health managers' UDP port 5555.",
    )
    certificates: SecretRef | None = Field(
        None,
        description="Secret with the amphorae's TLS: `server_ca.cert.pem`, `server_ca.key.pem`, "
        "`client_ca.cert.pem` and `client.cert-and-key.pem` (the server CA's key unencrypted).",
    )

    @field_validator("health_manager_addresses")
    @classmethod
    def _ip_and_port(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not re.fullmatch(r"[0-9a-fA-F.:\[\]]+:[0-9]{1,5}", a)]
        if bad:
            raise ValueError(f"addresses are ip:port (not: {', '.join(bad)})")
        return value

    @model_validator(mode="after")
    def _enabled_needs_its_resources(self) -> AmphoraSpec:
        if not self.enabled:
            return self
        needed = {
            "managementNetwork": self.management_network,
            "flavor": self.flavor,
            "healthManagerAddresses": self.health_manager_addresses,
            "certificates": self.certificates,
        }
        missing = [name for name, value in needed.items() if not value]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required when the amphora provider is enabled")
        return self


class OctaviaSpec(OptInService, ServiceSpec):
    """Load balancing: octavia's API with the OVN provider driver, which makes each load balancer
    OVN's own (no VMs), and optionally the amphora provider."""

    amphora: AmphoraSpec = Field(default_factory=AmphoraSpec)


SWIFT_DEVICE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class SwiftDevice(ApiModel):
    """One disk of a storage node: a PVC (by default) or a directory of the node (`hostPath`)."""

    name: Annotated[str, Field(min_length=1, max_length=32, pattern=SWIFT_DEVICE_PATTERN)] = Field(
        description="The device's name in the rings, and its directory under /srv/node in the storage pod."
    )
    weight: float = Field(100, ge=0, description="Its share of the partitions, relative to the other devices'.")
    host_path: str | None = Field(
        None, pattern=r"^/", description="A directory of the node (a mounted disk) instead of a PVC."
    )
    storage: Storage = Field(
        default_factory=lambda: Storage(size="100Gi"), description="The PVC, unless hostPath is set."
    )


class SwiftNode(ApiModel):
    """A storage node: a Kubernetes node (among those nodeSelector picks) and the devices it holds."""

    node: Annotated[str, Field(min_length=1, max_length=63, pattern=OBJECT_NAME_PATTERN)] = Field(
        description="The Kubernetes node's name (its kubernetes.io/hostname label)."
    )
    region: int = Field(1, ge=1, description="The ring's region of its devices.")
    zone: int = Field(1, ge=1, description="The ring's zone of its devices (a failure domain: rack, power).")
    devices: list[SwiftDevice] = Field(min_length=1)

    @field_validator("devices")
    @classmethod
    def _unique_devices(cls, value: list[SwiftDevice]) -> list[SwiftDevice]:
        require_unique("devices' names", [d.name for d in value])
        return value


class SwiftRings(ApiModel):
    """The account, container and object rings' shape (swift-ring-builder create)."""

    part_power: int = Field(
        10,
        ge=4,
        le=14,
        description="2^partPower partitions. At most 14: the rings and their builder files are kept in a Secret "
        "(1 MiB at most). It cannot be changed once data is stored.",
    )
    replicas: int = Field(3, ge=1, le=6, description="Copies of each account, container and object.")
    min_part_hours: int = Field(1, ge=0, description="Hours before a partition moved by a rebalance may move again.")


class SwiftServers(ApiModel):
    """The storage nodes' servers and daemons."""

    config: IniOverrides = Field(
        default_factory=dict,
        description="Overrides of account-server.conf, container-server.conf and object-server.conf alike: "
        "{section: {option: value}}, e.g. [DEFAULT] workers.",
    )


class SwiftSpec(OptInService, ServiceSpec):
    """Object storage: the proxy (keystone tokens, and the S3 API with keystone's EC2 credentials)
    and the account, container and object servers with their replicators, auditors and updaters on
    the storage nodes `nodes` names, their rings built by stackops (docs/swift.md)."""

    node_selector: NodeSelector = Field(
        default_factory=lambda: NodeSelector(match_labels=role_labels("object-storage")),
        description="Labels every storage node has, beside the name `nodes` gives it.",
    )
    nodes: list[SwiftNode] = Field(
        default_factory=list, description="The storage nodes and their devices: what the rings are built from."
    )
    rings: SwiftRings = Field(default_factory=SwiftRings)
    servers: SwiftServers = Field(default_factory=lambda: SwiftServers())

    @field_validator("nodes")
    @classmethod
    def _unique_nodes(cls, value: list[SwiftNode]) -> list[SwiftNode]:
        require_unique("nodes' names", [n.node for n in value])
        return value


class ManilaLvm(ApiModel):
    """The share service's LVM backend: a logical volume per share, in a volume group of each
    storage node (spec.nodes.storage), exported over NFS from the node's address."""

    volume_group: str = Field(
        "manila-volumes",
        min_length=1,
        max_length=127,
        pattern=r"^[A-Za-z0-9_+.][A-Za-z0-9_+.-]*$",
        description="LVM volume group on each storage node that holds the shares' logical volumes.",
    )


class ManilaSpec(OptInService, ServiceSpec):
    """Shared file systems: manila's API, scheduler and data service, and the share service with
    the LVM driver on the storage nodes, each share a logical volume exported over NFS; CephFS and
    other drivers through `config` (docs/manila.md)."""

    lvm: ManilaLvm = Field(default_factory=ManilaLvm)
    default_share_type: ShortName = Field(
        "default",
        description="The share type stackops creates (for the LVM backend, without share servers) and manila "
        "gives a share created without one.",
    )


class GnocchiStorage(Storage):
    """The PVC of gnocchi's file driver: the measures waiting for metricd and the aggregates it computes."""

    size: Size = Field("50Gi", description="Requested PVC size.")
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = Field(
        "ReadWriteOnce", description="ReadWriteMany lets several API replicas (each with its metricd) share it."
    )


class GnocchiSpec(OptInService, ServiceSpec):
    """Metrics: gnocchi's API and metricd (which aggregates the measures the API receives), its index
    in MariaDB and its measures on a PVC (the file driver). Swift or Ceph instead is set through
    `config` ([storage] and [incoming]; docs/telemetry.md)."""

    storage: GnocchiStorage = Field(default_factory=lambda: GnocchiStorage())

    @model_validator(mode="after")
    def _shared_storage_for_replicas(self) -> GnocchiSpec:
        if self.replicas > 1 and self.storage.access_mode != "ReadWriteMany":
            raise ValueError("replicas: more than 1 needs storage.accessMode ReadWriteMany")
        return self


class AodhSpec(OptInService, ServiceSpec):
    """Alarms: aodh's API, evaluator (which evaluates threshold alarms on gnocchi's aggregates),
    notifier and listener. Needs gnocchi."""


class CeilometerSpec(OptInService, ServiceSpec):
    """Metering: ceilometer's notification agent (samples from the notifications of glance, nova,
    cinder and designate) and central agent on the control plane, its compute agent on every
    compute node (samples from libvirt), all published to gnocchi. Needs gnocchi."""


# One field per OpenStack service; the spec of a service added from now on is an OptInService.
class ServicesSpec(ApiModel):
    keystone: KeystoneSpec = Field(default_factory=KeystoneSpec)
    placement: ServiceSpec = Field(default_factory=ServiceSpec)
    glance: GlanceSpec = Field(default_factory=GlanceSpec)
    nova: NovaSpec = Field(default_factory=NovaSpec)
    neutron: NeutronSpec = Field(default_factory=NeutronSpec)
    cinder: CinderSpec = Field(default_factory=CinderSpec)
    horizon: HorizonSpec = Field(default_factory=HorizonSpec)
    heat: ServiceSpec = Field(default_factory=ServiceSpec)
    barbican: BarbicanSpec = Field(default_factory=BarbicanSpec)
    designate: DesignateSpec = Field(default_factory=DesignateSpec)
    octavia: OctaviaSpec = Field(default_factory=OctaviaSpec)
    swift: SwiftSpec = Field(default_factory=SwiftSpec)
    manila: ManilaSpec = Field(default_factory=ManilaSpec)
    gnocchi: GnocchiSpec = Field(default_factory=GnocchiSpec)
    aodh: AodhSpec = Field(default_factory=AodhSpec)
    ceilometer: CeilometerSpec = Field(default_factory=CeilometerSpec)


class ImagesSpec(ApiModel):
    """Where service images come from: <registry>/<namespace>/<name>:<tag>."""

    registry: str = "quay.io"
    namespace: str = "openstack.kolla"
    distro: str = Field("ubuntu-noble", description="Kolla base distro; part of the default tag.")
    tag: str | None = Field(None, description="Image tag; <release>-<distro> when unset.")
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    pull_secrets: list[ObjectName] = Field(default_factory=list, description="Names of image pull Secrets.")


class TlsSpec(ApiModel):
    secret_name: ObjectName | None = Field(None, description="TLS Secret for public endpoints; https when set.")


class GatewayRef(ApiModel):
    name: str
    namespace: str | None = None
    section_name: str | None = None


class EndpointsSpec(ApiModel):
    """How public endpoints are exposed. Without a publicDomain the cloud is reachable in-cluster only."""

    public_domain: str | None = Field(None, description="DNS domain; services get <service>.<domain>.")
    exposure: Literal["Ingress", "HTTPRoute"] = Field("Ingress", description="Ingress or Gateway API HTTPRoute.")
    ingress_class_name: str | None = None
    gateway: GatewayRef | None = Field(None, description="Parent Gateway of HTTPRoutes.")
    tls: TlsSpec = Field(default_factory=TlsSpec)
    cluster_domain: str = Field(
        "cluster.local",
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        description="The Kubernetes cluster's DNS domain (the kubelet's clusterDomain). Open vSwitch and OVN "
        "resolve names without the search domains pods have, so they are given fully qualified Service names.",
    )

    @model_validator(mode="after")
    def _gateway_for_routes(self) -> EndpointsSpec:
        if self.exposure == "HTTPRoute" and self.public_domain and self.gateway is None:
            raise ValueError("gateway: required when exposure is HTTPRoute")
        return self


def role_labels(role: str) -> dict[str, str]:
    """The label a node role selects by default: `stackops.dev/<role>: "true"`."""
    return {f"stackops.dev/{role}": "true"}


class NodesSpec(ApiModel):
    """Which nodes run what, by label (node roles, as openstack-helm and kolla-ansible assign them)."""

    control_plane: NodeSelector = Field(default_factory=lambda: NodeSelector(match_labels=role_labels("control-plane")))
    compute: AgentNodes = Field(default_factory=lambda: AgentNodes(match_labels=role_labels("compute")))
    gateway: AgentNodes = Field(
        default_factory=lambda: AgentNodes(match_labels=role_labels("gateway")),
        description="Nodes that carry external traffic (OVN gateway chassis); they also run ovn-controller.",
    )
    storage: AgentNodes = Field(
        default_factory=lambda: AgentNodes(match_labels=role_labels("storage")),
        description="Nodes with the LVM volume groups of cinder's lvm backends and of manila's shares.",
    )

    @model_validator(mode="after")
    def _role_labels_unless_given(self) -> NodesSpec:
        """A role written without matchLabels (only its maxUnavailable, say) keeps its role label:
        an empty selector would put its agents on every node."""
        for role in ("compute", "gateway", "storage"):
            nodes: AgentNodes = getattr(self, role)
            if "match_labels" not in nodes.model_fields_set:
                nodes.match_labels = role_labels(role)
        return self


# Namespace names are DNS labels; NetworkPolicies pick namespaces by the name label Kubernetes sets.
NAMESPACE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NamespaceName = Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE_NAME_PATTERN)]


def _cidr(value: str) -> str:
    """An IPv4 or IPv6 CIDR, in its canonical form (host bits cleared), as NetworkPolicy ipBlocks take it."""
    if "/" not in value:
        raise ValueError(f"{value!r} is not a CIDR (an address and a prefix length, e.g. 10.0.0.0/24)")
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR (an address and a prefix length, e.g. 10.0.0.0/24)") from None


Cidr = Annotated[str, Field(json_schema_extra={"format": "cidr"}), AfterValidator(_cidr)]


class ApiAccess(ApiModel):
    """Who may call the cloud's APIs (keystone, nova …, the dashboard and the console proxy) besides the
    cloud's own pods and its nodes (spec.networkPolicies.nodeCIDRs), which always may."""

    from_: Literal["Cluster", "Anywhere", "Namespaces"] = Field(
        "Cluster",
        alias="from",
        description="Cluster: every pod of the cluster (an Ingress or Gateway controller wherever it runs, "
        "the operator's health checks); Anywhere: any address, for load balancers that pass clients' "
        "own addresses on to the pods; Namespaces: only pods of the namespaces named in `namespaces`. "
        "A controller on the host's network comes from its node: nodeCIDRs.",
    )
    namespaces: list[NamespaceName] = Field(
        default_factory=list,
        description="With from: Namespaces, the namespaces whose pods may call the APIs: the Ingress or "
        "Gateway controller's, and the operator's own (its health checks call the APIs).",
    )

    @model_validator(mode="after")
    def _namespaces_with_namespaces(self) -> ApiAccess:
        if self.from_ == "Namespaces" and not self.namespaces:
            raise ValueError("namespaces: at least one is needed with from: Namespaces")
        if self.from_ != "Namespaces" and self.namespaces:
            raise ValueError(f"namespaces: only with from: Namespaces (from: {self.from_} admits them all)")
        require_unique("namespaces", self.namespaces)
        return self


class NetworkPoliciesSpec(ApiModel):
    """NetworkPolicies for the cloud's pods: each service's pods refuse every connection but those its
    clients need (docs/security.md lists the flows). They take effect where the cluster's network
    plugin enforces NetworkPolicy; elsewhere they are inert."""

    enabled: bool = Field(True, description="false removes them: the cloud's pods accept connections from anywhere.")
    api_access: ApiAccess = Field(default_factory=ApiAccess)
    monitoring_namespace: NamespaceName | None = Field(
        None,
        description="A namespace whose pods may scrape the cloud's metrics ports (RabbitMQ's Prometheus "
        "endpoint); none: they are closed.",
    )
    node_cidrs: list[Cidr] = Field(
        default_factory=list,
        alias="nodeCIDRs",
        description="The addresses of the cloud's nodes. Host agents (ovn-controller, the OVN metadata agent, "
        "nova-compute, cinder-volume on LVM) use the host's network, so NetworkPolicy sees them only as "
        "node addresses: these may reach the APIs and the backends the agents use. Empty: the operator "
        "admits the InternalIP of every Node of the cluster instead, read on every pass (a node that joins "
        "is admitted by the next one); list CIDRs to admit whole node networks without the operator "
        "reading Nodes.",
    )

    @field_validator("node_cidrs")
    @classmethod
    def _unique_cidrs(cls, value: list[str]) -> list[str]:
        require_unique("nodeCIDRs", value)
        return value


class IssuerRef(ApiModel):
    """A cert-manager issuer of the cloud's certificates (docs/security.md, TLS inside the cloud)."""

    name: ObjectName = Field(description="Name of the Issuer (in the cloud's namespace) or ClusterIssuer.")
    kind: Literal["Issuer", "ClusterIssuer"] = Field("Issuer", description="Issuer or ClusterIssuer.")
    group: str = Field(
        "cert-manager.io", min_length=1, description="API group of the issuer (an external issuer's own group)."
    )


class InternalTlsSpec(ApiModel):
    """TLS between the cloud's own pods (its APIs and its backends), with certificates from the cloud's
    own certificate authority (made by the operator, kept in the credentials Secret, renewed months
    before expiry)."""

    enabled: bool = Field(
        True,
        description="false: the APIs and the backends the operator runs (MariaDB, RabbitMQ, OVN, memcached) "
        "serve plaintext, the catalog's internal URLs are http, and nothing verifies a certificate of the "
        "cloud's CA (docs/security.md, TLS inside the cloud).",
    )
    issuer: IssuerRef | None = Field(
        None,
        description="A cert-manager issuer that issues the cloud's certificates instead of the cloud's own CA: the "
        "operator asks for one Certificate per server and copies what cert-manager issues into the credentials "
        "Secret; the issuer must give its CA (ca.crt), which every client verifies with.",
    )


class CredentialRotationSpec(ApiModel):
    generation: int = Field(
        0,
        ge=0,
        description="Raise it to rotate the services' database, keystone and RabbitMQ passwords and keystone's "
        "credential keys, with no failed API call (docs/operations.md). A rotation begins once the cloud is ready; "
        "one asked for while another runs begins after it.",
    )


class OpenStackCloudSpec(ApiModel):
    release: Literal[SUPPORTED_RELEASES] = Field(  # type: ignore[valid-type]
        DEFAULT_RELEASE,
        description="OpenStack release series. Upgrades go one release at a time, or SLURP to SLURP; "
        "editing it upgrades the cloud (docs/upgrades.md).",
        json_schema_extra={"x-stackops-default-in-crd": True},
    )
    region: str = Field("RegionOne", min_length=1)
    paused: bool = Field(False, description="Stop all writes to the cloud's objects.")
    images: ImagesSpec = Field(default_factory=ImagesSpec)
    endpoints: EndpointsSpec = Field(default_factory=EndpointsSpec)
    nodes: NodesSpec = Field(default_factory=NodesSpec)
    infrastructure: InfrastructureSpec = Field(default_factory=InfrastructureSpec)
    services: ServicesSpec = Field(default_factory=ServicesSpec)
    network_policies: NetworkPoliciesSpec = Field(default_factory=NetworkPoliciesSpec)
    internal_tls: InternalTlsSpec = Field(default_factory=InternalTlsSpec, alias="internalTLS")
    credential_rotation: CredentialRotationSpec = Field(
        default_factory=CredentialRotationSpec,
        description="Rotations of the services' credentials, without downtime (docs/security.md, Rotation).",
    )
    deletion_policy: Literal["Retain", "Delete"] = Field(
        "Retain", description="Retain keeps the credentials Secret and volumes when the cloud is deleted."
    )


class Condition(ApiModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class ServiceStatus(ApiModel):
    phase: str = "Pending"
    ready: str = ""
    health: str | None = Field(
        None, description="Healthy, Degraded or Unknown, once the health checks judged the service."
    )
    release: str | None = None
    message: str = ""


class UpgradeStatus(ApiModel):
    """An upgrade under way (docs/upgrades.md)."""

    from_: str = Field(alias="from", description="The release deployed when the upgrade began.")
    to: str = Field(description="The release being upgraded to.")
    phase: Literal["Preflight", "Upgrading"] = Field(
        "Preflight", description="Preflight until the checks passed and something changes."
    )
    step: int = Field(0, description="The step under way, counted from 1.")
    steps: int = Field(0, description="How many steps the upgrade has.")
    service: str = Field("", description="The service of the step under way.")
    current: str = Field("", description="The step under way (e.g. db-expand, roll).")
    completed: list[str] = Field(default_factory=list, description="Steps done, as <service>/<step>.")
    rollback_to: str | None = Field(
        None, description="While set, spec.release may go back to this release: no database was contracted yet."
    )


class BackupStatus(ApiModel):
    """Backups, as their Jobs report them."""

    last: str | None = Field(None, description="The last successful backup's name (what restore.backup takes).")
    last_time: str | None = Field(None, description="When it began (UTC).")
    last_size: int | None = Field(None, description="Its size in bytes, compressed.")
    last_sha256: str | None = Field(None, description="The SHA-256 of its file, which a restore checks.")
    last_uploaded: str | None = Field(
        None, description="Where the object store holds it (the object's URL), when backup.objectStore is set."
    )
    failed: str | None = Field(None, description="Why the newest backup Job failed, until a backup succeeds again.")


class RestoreStatus(ApiModel):
    """A restore asked for by spec.infrastructure.database.restore or spec.services.neutron.ovn.restore."""

    backup: str
    phase: Literal["StoppingServices", "Restoring", "Syncing", "Restored", "Failed"] = Field(
        description="StoppingServices until every workload that writes to what is restored stopped, Restoring "
        "while the restore Job runs, Syncing while neutron's OVN sync Job runs (OVN's restore), then Restored "
        "(the services stay stopped until the spec's restore is removed) or Failed."
    )
    message: str = ""


class CredentialRotationStatus(ApiModel):
    """Where the last credential rotation is; no credential in it."""

    generation: int = Field(0, description="The spec.credentialRotation.generation last begun.")
    phase: Literal["Granting", "Rolling", "Revoking", "Done"] = Field(
        "Done",
        description="Granting: the new credentials work beside the old; Rolling: pods roll to them; Revoking: the "
        "old ones stop working, keystone's credentials are migrated to the new key; Done.",
    )


class DatabaseStatus(ApiModel):
    backup: BackupStatus | None = None
    restore: RestoreStatus | None = None


class NodeMaintenanceStatus(ApiModel):
    """A compute node in maintenance: Draining until its servers are moved (or stopped, or left by
    policy), then Drained (safe to take down), or Failed (what did not move is named)."""

    model_config = ConfigDict(extra="ignore")

    phase: Literal["Draining", "Drained", "Failed"] = "Draining"
    host: str = Field("", description="The node's nova-compute host.")
    instances: int = Field(0, description="Servers on the host when last looked at.")
    message: str = ""
    since: str | None = Field(None, description="When the nova-compute service was disabled.")
    moving: dict[str, str] = Field(default_factory=dict, description="Server id -> when its move or stop was asked.")
    failed: dict[str, str] = Field(default_factory=dict, description="Server id -> why it did not move; not retried.")


class DeadHostStatus(ApiModel):
    """A compute node NotReady past spec.services.nova.compute.deadHostGraceSeconds."""

    model_config = ConfigDict(extra="ignore")

    host: str = ""
    forced_down: bool = Field(False, description="stackops marked its nova-compute forced down.")
    instances: int = 0
    message: str = ""
    evacuating: dict[str, str] = Field(default_factory=dict, description="Server id -> when its evacuation was asked.")
    failed: dict[str, str] = Field(default_factory=dict)


class ComputeStatus(ApiModel):
    """The compute nodes as the operator's day-2 operations see them (docs/operations.md)."""

    model_config = ConfigDict(extra="ignore")

    hosts: dict[str, str] = Field(default_factory=dict, description="Node -> its nova-compute host, once seen.")
    maintenance: dict[str, NodeMaintenanceStatus] = Field(default_factory=dict)
    removal: dict[str, str] = Field(
        default_factory=dict, description="Node gone or out of the compute selector -> why its host stays in nova."
    )
    dead: dict[str, DeadHostStatus] = Field(default_factory=dict)


class OpenStackCloudStatus(ApiModel):
    model_config = ConfigDict(extra="ignore")  # status written by older versions must still load

    observed_generation: int | None = None
    phase: Literal["Pending", "Deploying", "Ready", "Upgrading", "Degraded", "Paused", "Failed"] = "Pending"
    release: str | None = Field(None, description="The release deployed, not the one asked for.")
    conditions: list[Condition] = Field(default_factory=list)
    services: dict[str, ServiceStatus] = Field(default_factory=dict)
    # None (absent) until known: a status shows only what stackops has seen
    endpoints: dict[str, str] | None = None
    hosts: dict[str, str] | None = Field(
        None,
        description="Per host agent (e.g. nova-compute, nova-compute-gpu): nodes where it is ready / nodes "
        "it runs on. Ready needs spec.nodes.<role>.minReadyPercent of them.",
    )
    upgrade: UpgradeStatus | None = Field(None, description="Progress of an upgrade to spec.release.")
    database: DatabaseStatus | None = Field(None, description="Backups of the cloud's databases, and a restore.")
    ovn: DatabaseStatus | None = Field(
        None, description="Backups of OVN's databases, and a restore of the northbound one."
    )
    credential_rotation: CredentialRotationStatus | None = Field(
        None, description="The last credential rotation asked for by spec.credentialRotation."
    )
    spec_hashes: dict[str, str] | None = Field(
        None,
        description="A hash per spec section as last converged: an upgrade refuses other changes made along "
        "with spec.release.",
    )
    compute: ComputeStatus | None = Field(
        None, description="Compute nodes in maintenance, being removed, or dead (docs/operations.md)."
    )


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=CLOUD_NAME_MAX, pattern=CLOUD_NAME_PATTERN)
    namespace: str = "default"


class OpenStackCloud(ApiModel):
    """The whole custom resource as a user writes it."""

    api_version: Literal["stackops.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["OpenStackCloud"]
    metadata: ObjectMeta
    spec: OpenStackCloudSpec
    status: OpenStackCloudStatus | None = None


def check_release_change(old: str, new: str) -> None:
    """Raise ValueError when spec.release may not move from `old` to `new` (the operator's own check)."""
    problem = transition_problem(old, new)
    if problem:
        raise ValueError(problem)
