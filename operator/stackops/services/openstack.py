"""The contract of an OpenStack service: what its module declares, and what stackops derives.

An OpenStack service (keystone, glance, nova …) declares, beside what every Service declares:
- `port`, its API's, and `openstack_images`, whose Kolla user is the service's user;
- `main_config`, its main oslo.config file, and `config(ctx)`, that file's sections;
- `databases`, the MariaDB databases it owns (its account is named after the service);
- `messaging`, whether it talks over RabbitMQ (its user and vhost are named after the service);
- `catalog`, its entries in keystone's catalog;
- `notifications_from`, the services whose notifications it consumes, and the topic of each;
- `database_upgrade`, the commands that move its database to the next release.

From these come its credentials (database, keystone and messaging passwords, named after the
service), its settings in the spec (`settings`), the main config file as its containers see it
(`config_file`, `command`) and rendered with the user's overrides (`main_files`), the steps it starts
with (`preamble`: config Secret, database, messaging user, catalog registration), its catalog URLs
and status endpoints, the components of its registration and upgrade Jobs, and its ServiceUpgrade.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar, cast

from stackops import services
from stackops.api.models import EndpointOverrides, OpenStackCloudSpec, ServiceSpec
from stackops.credentials import CredentialSpec
from stackops.render.ini import IniSections, render_ini
from stackops.render.kolla import ConfigFile, KollaCommand, Permission
from stackops.services import api, identity, mariadb, memcached, rabbitmq
from stackops.services.base import CA_FILE_KEY, CloudContext, Resources, Service, Step
from stackops.services.endpoints import service_urls
from stackops.services.images import KollaUser, OpenStackImages
from stackops.services.upgrades import CHECK_COMPONENT, ServiceUpgrade

SpecT = TypeVar("SpecT", bound=ServiceSpec)

# what a registration Job and an upgrade Job ask for, unless the service's components say otherwise
REGISTRATION_JOB = Resources(cpu="10m", memory="128Mi")
UPGRADE_JOB = Resources(cpu="25m", memory="256Mi")


@dataclass(frozen=True)
class MainConfig:
    """The service's main oslo.config file: its key in the config Secret, and where it is read."""

    name: str
    directory: str

    @property
    def dest(self) -> str:
        return f"{self.directory}/{self.name}"


@dataclass(frozen=True)
class CatalogEntry:
    """One entry of keystone's catalog: its type, its description and the path after the API's URL
    (`/v3`); for an API other than the service's main one (heat's cloudformation), that API's
    component and port, and the name it has in the catalog and as a public host; a second entry of
    the main API (manila's sharev2) has a name of its own in the catalog only."""

    type: str
    description: str
    path: str = ""
    component: str = "api"
    port: int | None = None
    name: str | None = None


@dataclass(frozen=True)
class DatabaseUpgrade:
    """The command lines that move the service's database to the next release, by phase
    (services/upgrades.py says when each runs); each reads the service's main config files."""

    check: str | None  # `<service>-status upgrade check`; None for a service without one (gnocchi)
    expand: Mapping[str, str] = field(default_factory=dict)  # component -> command line, in order
    contract: Mapping[str, str] = field(default_factory=dict)
    online: Mapping[str, str] = field(default_factory=dict)
    restart_after_agents: bool = False  # see ServiceUpgrade

    @property
    def components(self) -> tuple[str, ...]:
        return (*([CHECK_COMPONENT] if self.check else []), *self.expand, *self.contract, *self.online)


class OpenStackService(Service, Generic[SpecT]):
    """A service of OpenStack's own, run from its Kolla images (see the module's docstring)."""

    port: ClassVar[int]
    openstack_images: ClassVar[OpenStackImages]
    main_config: ClassVar[MainConfig]
    databases: ClassVar[tuple[str, ...]] = ()
    messaging: ClassVar[bool] = False
    catalog: ClassVar[tuple[CatalogEntry, ...]] = ()
    # The services whose notifications it consumes, each with the topic it reads them from: keystone's
    # to barbican's listener (which deletes a deleted project's secrets), the metered services' to
    # ceilometer's notification agent. They send them there over the consumer's transport (its
    # RabbitMQ user and vhost): see notifications().
    notifications_from: ClassVar[Mapping[str, str]] = {}
    # A keystone user of its own although it has no catalog entry (ceilometer: no API, but it reads
    # gnocchi and the APIs it polls as its own user); a service with a catalog entry always has one.
    keystone_account: ClassVar[bool] = False
    database_upgrade: ClassVar[DatabaseUpgrade | None] = None
    # Whether its keystone user is one of a pair that credential rotations alternate between
    # (docs/security.md, "Rotation"). Heat's is not: trusts name their trustee by id, and removing the
    # old account would orphan every stack's trust; its keystone password is not rotated.
    keystone_pair: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """The components of the Jobs the contract derives, so that their resources can be set like
        any other component's."""
        super().__init_subclass__(**kwargs)
        if "apis" not in cls.__dict__:  # the APIs its catalog entries name, unless it says more
            cls.apis = tuple(dict.fromkeys(entry.component for entry in cls.catalog))
        derived = dict.fromkeys(
            [identity.REGISTRATION] if cls.catalog or cls.keystone_account else [], REGISTRATION_JOB
        )
        if cls.database_upgrade is not None:
            derived |= dict.fromkeys(cls.database_upgrade.components, UPGRADE_JOB)
        cls.components = {**cls.components, **{c: r for c, r in derived.items() if c not in cls.components}}

    @property
    def has_keystone_user(self) -> bool:
        return bool(self.catalog) or self.keystone_account

    @property
    def user(self) -> KollaUser:
        return self.openstack_images.user

    def settings(self, ctx: CloudContext) -> SpecT:
        """The service's part of the cloud's spec."""
        return cast(SpecT, self.workload(ctx.spec))

    # credentials, and the sections that use them
    @property
    def database_password_key(self) -> str:
        return f"{self.name}-database-password"

    @property
    def keystone_password_key(self) -> str:
        return f"{self.name}-keystone-password"

    @property
    def messaging_password_key(self) -> str:
        return f"{self.name}-messaging-password"

    def credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        needed = {
            self.database_password_key: bool(self.databases),
            self.keystone_password_key: self.has_keystone_user,
            self.messaging_password_key: self.messaging,
        }
        rotates = {self.keystone_password_key: self.keystone_pair}
        rotated = [CredentialSpec(key, rotates=rotates.get(key, True)) for key, wanted in needed.items() if wanted]
        return [*rotated, *self.own_credentials(spec)]

    def uses(self, spec: OpenStackCloudSpec) -> frozenset[str]:
        """Beside what it depends on: MariaDB for its databases, RabbitMQ for its messaging, and
        memcached for a service with a keystone account, whose [keystone_authtoken] caches tokens
        there (keystone itself caches in it)."""
        needed = {mariadb.MARIADB.name: bool(self.databases), rabbitmq.RABBITMQ.name: self.messaging}
        needed[memcached.SERVICE.name] = bool(self.catalog)
        # RabbitMQ too while a service consumes its notifications, which it sends there
        needed[rabbitmq.RABBITMQ.name] |= notification_consumer(self.name, spec) is not None
        return super().uses(spec) | {name for name, wanted in needed.items() if wanted}

    def own_credentials(self, spec: OpenStackCloudSpec) -> list[CredentialSpec]:
        """Credentials beyond the passwords every service has (keystone's keys, heat's domain admin)."""
        return []

    def oslo_db(self, ctx: CloudContext, database: str | None = None) -> dict[str, Any]:
        """An oslo.db section for one of its databases (the first by default), as its account."""
        return mariadb.oslo_db(ctx, database or self.databases[0], self.name, self.database_password_key, self.ca_file)

    def authtoken(self, ctx: CloudContext) -> dict[str, Any]:
        return identity.authtoken(ctx, self.keystone_user(ctx), self.keystone_password_key, self.ca_file)

    def keystone_user(self, ctx: CloudContext) -> str:
        """The keystone user its configs authenticate as: the account of its pair in use."""
        return ctx.credentials.account(self.name) if self.keystone_pair else self.name

    def service_auth(self, ctx: CloudContext) -> dict[str, Any]:
        """keystoneauth settings of the service's own user, for the sections it calls other services
        with, and the cloud's CA, which its session verifies the internal endpoints with."""
        return {
            "cafile": self.ca_file,
            "auth_type": "password",
            "auth_url": identity.auth_url(ctx),
            "project_domain_id": "default",
            "user_domain_id": "default",
            "project_name": "service",
            "username": self.keystone_user(ctx),
            "password": ctx.credentials[self.keystone_password_key],
        }

    def transport_url(self, ctx: CloudContext) -> str:
        return rabbitmq.transport_url(ctx, self.name, self.messaging_password_key)

    def notifications(self, ctx: CloudContext) -> dict[str, dict[str, Any]]:
        """Its notifications of what it creates, updates and deletes, sent to the topic of the service
        that consumes them, over that service's transport (with the queue settings every messaging
        service shares, as the notifier declares the queue); none without such a service."""
        consumer = notification_consumer(self.name, ctx.spec)
        if consumer is None:
            return {}
        return rabbitmq.oslo_messaging(ctx, self.ca_file) | {
            "oslo_messaging_notifications": {
                "driver": "messagingv2",
                "transport_url": consumer.transport_url(ctx),
                "topics": consumer.notifications_from[self.name],
                # an unreachable broker (the consumer's user not made yet) costs a request one try,
                # not a wait: the notification is dropped with an error in the service's log
                "retry": 0,
            },
        }

    # config files and commands
    @abstractmethod
    def config(self, ctx: CloudContext) -> IniSections:
        """The main config file's sections, before the user's overrides."""

    def main_files(self, ctx: CloudContext) -> dict[str, str]:
        """The config files every command of the service reads, with the user's overrides, by key."""
        return {self.main_config.name: render_ini(self.config(ctx), self.settings(ctx).config)}

    @property
    def config_file(self) -> ConfigFile:
        return ConfigFile(self.main_config.name, self.main_config.dest, self.user.name, "0600")

    def command_files(self) -> tuple[ConfigFile, ...]:
        """Where the containers see main_files(), and the cloud's CA, which verifies its backends' TLS."""
        return (self.config_file, ConfigFile(CA_FILE_KEY, self.ca_file, self.user.name, "0644"))

    @property
    def ca_file(self) -> str:
        """Where its containers find the cloud's CA: beside its main config, in a directory kolla_start
        may write to as the service's user."""
        return f"{self.main_config.directory}/{CA_FILE_KEY}"

    def command(self, line: str, *files: ConfigFile, permissions: Sequence[Permission] = ()) -> KollaCommand:
        """A process reading the main config files (and `files`)."""
        return KollaCommand(line, (*self.command_files(), *files), tuple(permissions))

    def api_tls(self, ctx: CloudContext) -> api.ServerTls | None:
        """Where its APIs' containers have their certificate: beside its main config (with internal TLS)."""
        return api.server_tls(ctx, self.main_config.directory)

    def api_tls_files(self, ctx: CloudContext) -> tuple[ConfigFile, ...]:
        """Its APIs' certificate and key where api_tls() says (none without internal TLS), for an API
        server other than uwsgi_command()'s."""
        tls = self.api_tls(ctx)
        return tls.files(self.user.name) if tls else ()

    def uwsgi_command(
        self, ctx: CloudContext, component: str = "api", permissions: Sequence[Permission] = ()
    ) -> KollaCommand:
        """An API of the service under uWSGI, its config (and certificate) next to the main file."""
        return api.uwsgi_command(
            self.name,
            self.user.name,
            self.main_config.directory,
            *self.command_files(),
            component=component,
            permissions=tuple(permissions),
            tls=self.api_tls(ctx),
        )

    def uwsgi_config(self, ctx: CloudContext, process: str, port: int, module_file: str, **options: Any) -> str:
        """api.uwsgi_config() for one of its APIs, serving HTTPS with its certificate (internal TLS)."""
        return api.uwsgi_config(ctx, process, port, module_file, tls=self.api_tls(ctx), **options)

    def kolla(self, ctx: CloudContext, files: dict[str, str], commands: dict[str, KollaCommand]) -> api.Kolla:
        """The service's config Secret and what its containers share, in its first image."""
        first = self.openstack_images.images[0]
        return api.kolla(ctx, self, first.name, files, commands, self.user.uid, root_helper=first.root_helper)

    def in_image(self, ctx: CloudContext, kolla: api.Kolla, name: str) -> api.Kolla:
        """What `kolla` shares, in the service's image `name` (subject to the spec's overrides)."""
        image = next(i for i in self.openstack_images.images if i.name == name)
        return replace(kolla, image=ctx.image(self.settings(ctx), name), root_helper=image.root_helper)

    # where it is reached
    def catalog_urls(self, ctx: CloudContext, entry: CatalogEntry | None = None) -> dict[str, str]:
        """Internal and public URLs of a catalog entry (the first by default); the spec's endpoint
        overrides are the main API's."""
        entry = entry or self.catalog[0]
        main = entry.component == "api"
        overrides = self.settings(ctx).endpoints if main else EndpointOverrides()
        # a second entry of the main API (manila's sharev2) is reached at the main API's host
        public_name = None if main else entry.name
        base = service_urls(ctx, overrides, self.name, entry.port or self.port, entry.component, public_name)
        return {interface: f"{url}{entry.path}" for interface, url in base.items()}

    def endpoints(self, ctx: CloudContext) -> dict[str, str]:
        return {entry.type: self.catalog_urls(ctx, entry)["public"] for entry in self.catalog}

    def catalog_names(self) -> list[tuple[str, str, str]]:
        """Its catalog entries as its registration Jobs write them: (type, name, description)."""
        return [(entry.type, entry.name or self.name, entry.description) for entry in self.catalog]

    def keystone_users(self) -> tuple[identity.KeystoneUser, ...]:
        """The keystone users its Jobs create: its service user, named after it."""
        return (identity.KeystoneUser(self.name),) if self.has_keystone_user else ()

    # steps
    def preamble(self, ctx: CloudContext, kolla: api.Kolla, *objects: dict[str, Any]) -> list[Step]:
        """What comes before the service's own Jobs and processes: its config Secret (with `objects`
        that go with it), its databases and account, its RabbitMQ user, its catalog registration."""
        steps = [Step(f"{self.name}-config", self.name, [kolla.config.obj, *objects])]
        if self.databases:
            steps.append(mariadb.database_step(ctx, self, list(self.databases), self.name, self.database_password_key))
        if self.messaging:
            steps.append(rabbitmq.user_step(ctx, self, self.name, self.messaging_password_key))
        if self.keystone_account and not self.catalog:  # its user alone
            steps.append(
                identity.registration_step(
                    ctx, self, None, "", {}, self.keystone_password_key, None, self.keystone_pair
                )
            )
        for entry in self.catalog:
            urls = self.catalog_urls(ctx, entry)
            password = self.keystone_password_key
            steps.append(
                identity.registration_step(
                    ctx, self, entry.type, entry.description, urls, password, entry.name, self.keystone_pair
                )
            )
        return steps

    def upgrade(self, ctx: CloudContext) -> ServiceUpgrade | None:
        declared = self.database_upgrade
        if declared is None:
            return None

        def commands(lines: Mapping[str, str]) -> dict[str, KollaCommand]:
            return {component: self.command(line) for component, line in lines.items()}

        return ServiceUpgrade(
            image=self.openstack_images.names[0],
            uid=self.user.uid,
            files=self.main_files(ctx),
            check=self.command(declared.check) if declared.check else None,
            expand=commands(declared.expand),
            contract=commands(declared.contract),
            online=commands(declared.online),
            restart_after_agents=declared.restart_after_agents,
        )


def notification_consumer(name: str, spec: OpenStackCloudSpec) -> OpenStackService[Any] | None:
    """The enabled service that consumes the notifications of the service `name`, if any: a
    service's notifier has one transport, so one such service at most."""
    consumers = [
        s
        for s in services.all_services()
        if isinstance(s, OpenStackService) and name in s.notifications_from and s.enabled(spec)
    ]
    assert len(consumers) <= 1, f"{name} sends its notifications over one transport"
    return consumers[0] if consumers else None
