#!/usr/bin/env python3
"""Write what the Helm chart takes from the code: the CRDs (copied from crds/) and the operator's
RBAC rules (stackops.reconcile.rbac, what `stackops rbac` prints), split by where they apply.

    .venv/bin/python hack/helm/sync_chart.py            # write charts/stackops/{crds,files}
    .venv/bin/python hack/helm/sync_chart.py --check    # exit 1 naming each file that is out of date

tests/chart keeps both in sync; `make chart` runs this and then `helm lint`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from stackops.kube.kinds import LEASE
from stackops.reconcile.rbac import rules

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
CHART = ROOT / "charts" / "stackops"
RULES_FILE = CHART / "files" / "rbac-rules.yaml"

# Built-in resources that live outside namespaces: a Role cannot grant them, so namespace-scoped
# installs grant them through a ClusterRole.
CLUSTER_SCOPED = frozenset(
    {
        "namespaces",
        "nodes",
        "persistentvolumes",
        "customresourcedefinitions",
        "storageclasses",
        "clusterroles",
        "clusterrolebindings",
        "priorityclasses",
        "ingressclasses",
        "gatewayclasses",
        "runtimeclasses",
        "csidrivers",
        "csinodes",
        "volumeattachments",
        "apiservices",
        "certificatesigningrequests",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    }
)

HEADER = """\
# The operator's RBAC rules, written by hack/helm/sync_chart.py from stackops.reconcile.rbac (the rules
# `stackops rbac` prints). Do not edit: run `make chart`. Together the three lists are exactly those rules:
#   namespaced      the watched namespaces' objects: a Role in each, or the ClusterRole when all are watched
#   clusterScoped   resources outside namespaces: always in a ClusterRole
#   leaderElection  the Lease in the operator's own namespace
"""


def split_rules() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {"namespaced": [], "clusterScoped": [], "leaderElection": []}
    for rule in rules():
        resources = {r.split("/")[0] for r in rule["resources"]}
        if rule["apiGroups"] == [LEASE.group] and resources == {LEASE.plural}:
            found["leaderElection"].append(rule)
        elif resources <= CLUSTER_SCOPED:
            found["clusterScoped"].append(rule)
        elif resources & CLUSTER_SCOPED:
            raise SystemExit(f"a rule mixes cluster-scoped and namespaced resources, split it: {rule}")
        else:
            found["namespaced"].append(rule)
    return found


def expected() -> dict[Path, str]:
    """Every generated file of the chart and its content."""
    files = {CHART / "crds" / crd.name: crd.read_text(encoding="utf-8") for crd in sorted(CRDS.glob("*.yaml"))}
    # a JSON round trip unshares the verb lists, so the file has no YAML anchors
    plain = json.loads(json.dumps(split_rules()))
    files[RULES_FILE] = HEADER + yaml.safe_dump(plain, sort_keys=False, default_flow_style=False)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    files = expected()
    stale = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    stale += [p for p in (CHART / "crds").glob("*.yaml") if p not in files]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)}: out of date, run `make chart`", file=sys.stderr)
        return 1 if stale else 0
    for path in (CHART / "crds").glob("*.yaml"):
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
