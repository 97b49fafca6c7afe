"""OpenStack release series stackops can deploy, and which release steps an upgrade may take.

The upgrade rules are defined here once; the CRD's CEL transition rules are generated from them,
so the API server and the operator can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SUPPORTED_RELEASES: tuple[str, ...] = ("2025.1", "2025.2", "2026.1", "2026.2")
# What the rendered configs need beside each service's own requirements: the MariaDB driver
# (mysql+pymysql://) and the cipher of the encrypted token caches (memcache_security_strategy =
# ENCRYPT), which keystonemiddleware leaves optional. The images and the real tests' virtualenvs
# install them with every service.
RUNTIME_LIBRARIES: tuple[str, ...] = ("PyMySQL", "cryptography")
DEFAULT_RELEASE = "2026.1"


@dataclass(frozen=True)
class Release:
    series: str
    codename: str
    # PyPI requirement of each service's server package at this release (images and tests install these).
    packages: dict[str, str]
    # Libraries whose newer majors the release's services break on; installed alongside the packages.
    constraints: tuple[str, ...] = ()
    # Libraries one service breaks on at this release although its requirements allow them; installed
    # alongside that service's package only.
    service_constraints: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def requirements(self, service: str) -> list[str]:
        """What installs `service` at this release: its package and the constraints it needs."""
        return [self.packages[service], *self.constraints, *self.service_constraints.get(service, ())]

    def own_requirements(self, service: str) -> list[str]:
        """`service`'s package and the constraints of that service alone (an image installs these
        on top of a base that already holds the release-wide constraints)."""
        return [self.packages[service], *self.service_constraints.get(service, ())]

    @property
    def is_slurp(self) -> bool:
        """SLURP releases (the first of each year) may be upgraded to the next SLURP directly."""
        return self.series.endswith(".1")


def _packages(keystone: int, placement: int, glance: int, nova: int, horizon: str) -> dict[str, str]:
    """PyPI requirements of one release. Neutron, cinder and heat majors move with nova's (-5, -5, -7)."""
    return {
        "keystone": f"keystone>={keystone},<{keystone + 1}",
        "placement": f"openstack-placement>={placement},<{placement + 1}",
        "glance": f"glance>={glance},<{glance + 1}",
        "nova": f"nova>={nova},<{nova + 1}",
        "neutron": f"neutron>={nova - 5},<{nova - 4}",
        "cinder": f"cinder>={nova - 5},<{nova - 4}",
        "heat": f"openstack-heat>={nova - 7},<{nova - 6}",
        # horizon releases intermediary versions; the ranges come from openstack/releases
        "horizon": f"horizon{horizon}",
    }


# neutron 26 to 28 import API definitions that neutron-lib 4 removed, yet ask only for neutron-lib>=3.x
NEUTRON_LIB_3: dict[str, tuple[str, ...]] = {"neutron": ("neutron-lib<4",)}

RELEASES: dict[str, Release] = {
    r.series: r
    for r in (
        Release("2025.1", "Epoxy", _packages(27, 13, 30, 31, ">=25.2,<25.4"), service_constraints=NEUTRON_LIB_3),
        Release("2025.2", "Flamingo", _packages(28, 14, 31, 32, ">=25.4,<25.6"), service_constraints=NEUTRON_LIB_3),
        Release(
            "2026.1",
            "Gazpacho",
            _packages(29, 15, 32, 33, ">=25.6,<26"),
            # oslo.policy 6 dropped [oslo_policy]enforce_scope, which placement 15 still reads
            ("oslo.policy<6",),
            NEUTRON_LIB_3,
        ),
        Release("2026.2", "2026.2", _packages(30, 16, 33, 34, ">=26,<28")),
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
