"""OpenStack release series stackops can deploy, and which release steps an upgrade may take.

The upgrade rules are defined here once; the CRD's CEL transition rules are generated from them,
so the API server and the operator can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED_RELEASES: tuple[str, ...] = ("2025.1", "2025.2", "2026.1", "2026.2")
DEFAULT_RELEASE = "2026.1"


@dataclass(frozen=True)
class Release:
    series: str
    codename: str
    # PyPI requirement of each service's server package at this release (images and tests install these).
    packages: dict[str, str]
    # Libraries whose newer majors the release's services break on; installed alongside the packages.
    constraints: tuple[str, ...] = ()

    @property
    def is_slurp(self) -> bool:
        """SLURP releases (the first of each year) may be upgraded to the next SLURP directly."""
        return self.series.endswith(".1")


RELEASES: dict[str, Release] = {
    r.series: r
    for r in (
        Release(
            "2025.1",
            "Epoxy",
            {"keystone": "keystone>=27,<28", "placement": "openstack-placement>=13,<14", "glance": "glance>=30,<31"},
        ),
        Release(
            "2025.2",
            "Flamingo",
            {"keystone": "keystone>=28,<29", "placement": "openstack-placement>=14,<15", "glance": "glance>=31,<32"},
        ),
        Release(
            "2026.1",
            "Gazpacho",
            {"keystone": "keystone>=29,<30", "placement": "openstack-placement>=15,<16", "glance": "glance>=32,<33"},
            # oslo.policy 6 dropped [oslo_policy]enforce_scope, which placement 15 still reads
            ("oslo.policy<6",),
        ),
        Release(
            "2026.2",
            "2026.2",
            {"keystone": "keystone>=30,<31", "placement": "openstack-placement>=16,<17", "glance": "glance>=33,<34"},
        ),
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
