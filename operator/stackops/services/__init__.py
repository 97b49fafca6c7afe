"""The services a cloud is made of. Each module here that defines `SERVICE` is one of them.

Beside them: the contract every service implements (`base`), the shapes they share (`api`, `hosts`
…), and what a service declares for the layers above to act on, its health checks (`health_checks`)
and its upgrade commands (`upgrades`). Pure declarations: nothing here imports a package above.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from stackops.services.base import Service


@cache
def all_services() -> tuple[Service, ...]:
    """Every service, ordered so each comes after what it depends on (ties broken by name)."""
    found: dict[str, Service] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        service = getattr(module, "SERVICE", None)
        if isinstance(service, Service):
            found[service.name] = service
    return tuple(found[name] for name in dependency_order({n: s.depends_on for n, s in found.items()}))


def dependency_order(graph: dict[str, tuple[str, ...]]) -> list[str]:
    """Kahn's algorithm with sorted ties, so the order is the same on every machine."""
    missing = {dep for deps in graph.values() for dep in deps} - graph.keys()
    if missing:
        raise ValueError(f"unknown dependencies: {', '.join(sorted(missing))}")
    remaining = {name: set(deps) for name, deps in graph.items()}
    order: list[str] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps)
        if not ready:
            raise ValueError(f"dependency cycle among: {', '.join(sorted(remaining))}")
        for name in ready:
            order.append(name)
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def service(name: str) -> Service:
    for candidate in all_services():
        if candidate.name == name:
            return candidate
    raise KeyError(name)
