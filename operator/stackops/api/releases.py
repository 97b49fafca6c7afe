"""OpenStack release series stackops can deploy, and which release steps an upgrade may take.

The upgrade rules are defined here once; the CRD's CEL transition rules are generated from them,
so the API server and the operator can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SUPPORTED_RELEASES: tuple[str, ...] = ("2025.1", "2025.2", "2026.1", "2026.2")
# What the rendered configs need beside each service's own requirements: the MariaDB driver
# (mysql+pymysql://) and the cipher of the encrypted token caches (memcache_security_strategy =
# ENCRYPT), which keystonemiddleware leaves optional. The images and the real tests' virtualenvs
# install them with every service.
RUNTIME_LIBRARIES: tuple[str, ...] = ("PyMySQL", "cryptography")
# The memcached clients the rendered caches use, which oslo.cache and keystonemiddleware leave
# optional: python-memcached (their pools without TLS), python-binary-memcached (both over TLS,
# which the cloud's internal TLS turns on: services/memcached.py) and pymemcache (oslo.cache's
# dogpile.cache.pymemcache backend, for a [cache] override). The images install them with every service.
MEMCACHED_CLIENTS: tuple[str, ...] = ("python-memcached", "python-binary-memcached", "pymemcache")
DEFAULT_RELEASE = "2026.1"


@dataclass(frozen=True)
class ServicePackage:
    """An OpenStack service's server package on PyPI, and the versions of it each release installs."""

    name: str
    # Most services release one major a series, a fixed distance from the release's number: their
    # major is `number + major_offset` (nova's is the number itself).
    major_offset: int = 0
    # Services that release in between (horizon) name the versions of each series instead.
    versions: Mapping[str, str] = field(default_factory=dict)
    # Packages of the same series installed beside the service's own, which its config loads
    # (octavia's OVN provider driver): each at its own major for the series.
    plugins: tuple[ServicePackage, ...] = ()

    def requirement(self, series: str, number: int) -> str:
        if self.versions:
            return f"{self.name}{self.versions[series]}"
        major = number + self.major_offset
        return f"{self.name}>={major},<{major + 1}"


# The package of every OpenStack service stackops deploys, by service name: a new service adds its
# line here. Images are built in this order (hack/images/build.py).
SERVICE_PACKAGES: dict[str, ServicePackage] = {
    "keystone": ServicePackage("keystone", major_offset=-4),
    "glance": ServicePackage("glance", major_offset=-1),
    "placement": ServicePackage("openstack-placement", major_offset=-18),
    "nova": ServicePackage("nova"),
    "neutron": ServicePackage("neutron", major_offset=-5),
    "cinder": ServicePackage("cinder", major_offset=-5),
    # the ranges come from openstack/releases
    "horizon": ServicePackage(
        "horizon",
        versions={"2025.1": ">=25.2,<25.4", "2025.2": ">=25.4,<25.6", "2026.1": ">=25.6,<26", "2026.2": ">=26,<28"},
    ),
    "heat": ServicePackage("openstack-heat", major_offset=-7),
    "barbican": ServicePackage("barbican", major_offset=-11),
    "designate": ServicePackage("designate", major_offset=-11),
    "manila": ServicePackage("manila", major_offset=-11),
    # the OVN provider driver, which octavia loads by default, releases its own major each series
    "octavia": ServicePackage(
        "octavia", major_offset=-15, plugins=(ServicePackage("ovn-octavia-provider", major_offset=-23),)
    ),
    # swift releases on its own numbering, several a series; the ranges come from openstack/releases
    "swift": ServicePackage(
        "swift",
        versions={
            "2025.1": ">=2.35,<2.36",
            "2025.2": ">=2.36,<2.37",
            "2026.1": ">=2.37,<2.38",
            "2026.2": ">=2.38,<2.40",
        },
    ),
    # gnocchi releases on its own (github.com/gnocchixyz), a minor every year or so, with no upper bound
    # on any library: 4.6 was current when 2025.1 released (4.6.5, March 2025), 4.7 (August 2025, the
    # first asking for oslo.policy>=4.5) from 2025.2 on, its 4.7.1 (September 2026) with 2026.2. Its
    # extras: keystonemiddleware for the API, PyMySQL, oslo.db and alembic for the MariaDB indexer.
    "gnocchi": ServicePackage(
        "gnocchi[keystone,mysql]",
        versions={
            "2025.1": ">=4.6.5,<4.7",
            "2025.2": ">=4.7,<4.8",
            "2026.1": ">=4.7,<4.8",
            "2026.2": ">=4.7.1,<4.8",
        },
    ),
    "aodh": ServicePackage("aodh", major_offset=-11),
    "ceilometer": ServicePackage("ceilometer", major_offset=-7),
}


@dataclass(frozen=True)
class Release:
    series: str
    codename: str
    # The release's place in OpenStack's sequence (Epoxy, 2025.1, is the 31st), which the majors of
    # most services' packages follow (SERVICE_PACKAGES).
    number: int
    # Libraries whose newer majors the release's services break on; installed alongside the packages.
    constraints: tuple[str, ...] = ()
    # Libraries one service breaks on at this release although its requirements allow them; installed
    # alongside that service's package only.
    service_constraints: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def packages(self) -> dict[str, str]:
        """PyPI requirement of each service's server package at this release (images and tests install these)."""
        return {service: p.requirement(self.series, self.number) for service, p in SERVICE_PACKAGES.items()}

    def plugins(self, service: str) -> list[str]:
        """PyPI requirements of the packages installed beside `service`'s own at this release."""
        return [p.requirement(self.series, self.number) for p in SERVICE_PACKAGES[service].plugins]

    def requirements(self, service: str) -> list[str]:
        """What installs `service` at this release: its package, its plugins and the constraints it needs."""
        return [
            self.packages[service], *self.plugins(service), *self.constraints,
            *self.service_constraints.get(service, ()),
        ]  # fmt: skip

    def own_requirements(self, service: str) -> list[str]:
        """`service`'s package and the constraints of that service alone (an image installs these
        on top of a base that already holds the release-wide constraints)."""
        return [self.packages[service], *self.plugins(service), *self.service_constraints.get(service, ())]

    @property
    def is_slurp(self) -> bool:
        """SLURP releases (the first of each year) may be upgraded to the next SLURP directly."""
        return self.series.endswith(".1")


# neutron 26 to 28 import API definitions that neutron-lib 4 removed, yet ask only for neutron-lib>=3.x
NEUTRON_LIB_3: dict[str, tuple[str, ...]] = {"neutron": ("neutron-lib<4",)}

RELEASES: dict[str, Release] = {
    r.series: r
    for r in (
        Release("2025.1", "Epoxy", 31, service_constraints=NEUTRON_LIB_3),
        Release("2025.2", "Flamingo", 32, service_constraints=NEUTRON_LIB_3),
        Release(
            "2026.1",
            "Gazpacho",
            33,
            # oslo.policy 6 dropped [oslo_policy]enforce_scope, which placement 15 still reads
            ("oslo.policy<6",),
            NEUTRON_LIB_3,
        ),
        Release("2026.2", "2026.2", 34),
    )
}


def allowed_upgrades(series: str) -> tuple[str, ...]:
    """Releases a cloud on `series` may move to in one edit: the next one, or the next SLURP."""
    index = SUPPORTED_RELEASES.index(series)
    later = SUPPORTED_RELEASES[index + 1 :]
    targets = list(later[:1])
    if RELEASES[series].is_slurp:
        targets += [s for s in later[1:] if RELEASES[s].is_slurp][:1]
    return tuple(targets)


def transition_problem(old: str, new: str) -> str | None:
    """Why `old` -> `new` is not an allowed edit of spec.release, or None when it is."""
    if old == new:
        return None
    if new not in RELEASES:
        return f"release {new!r} is not supported (supported: {', '.join(SUPPORTED_RELEASES)})"
    if old not in RELEASES:
        return None  # a release this version no longer knows: let the user move to a supported one
    if SUPPORTED_RELEASES.index(new) < SUPPORTED_RELEASES.index(old):
        return f"downgrade from {old} to {new} is not allowed"
    if new not in allowed_upgrades(old):
        allowed = " or ".join(allowed_upgrades(old))
        return f"upgrade from {old} to {new} skips a release; from {old} go to {allowed} first"
    return None
