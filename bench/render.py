"""How long rendering takes: in-process (what the operator pays on each pass) and as a whole process
(what a user or a GitOps pipeline pays for `stackops render`), beside `helm template` over
openstack-helm's charts of the same core cloud where both are on this machine.

Prints figures only; nothing here asserts a time. Run: `make bench`.

In-process, per example cloud:
- first: a spec rendered for the first time in a process whose templates are compiled (the
  operator after a spec change);
- again: the same spec rendered again (the operator's every other pass; the parse of each
  template's output is kept, keyed by its text);
- yaml: writing the objects as the YAML `stackops render` prints.

Whole process: `stackops render -f examples/minimal.yaml` against `helm template` of the fourteen
openstack-helm charts of the same services (MariaDB, memcached, RabbitMQ, Open vSwitch, OVN,
libvirt, Keystone, Glance, Placement, Nova, Neutron, Cinder, Heat, Horizon), one after the other,
CPU time (user + sys) of each finished run from the kernel's accounting. helm comes from
hack/helm/helm.py; the charts from a checkout of openstack-helm given by --openstack-helm (or
$STACKOPS_CACHE/openstack-helm), each with `helm dependency build` done (this script does it).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from stackops.api.validation import load_cloud_text
from stackops.cache import cache_root
from stackops.plan import plan
from stackops.render import templates
from stackops.render.output import to_yaml

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 30
PROCESS_ROUNDS = 7
OPENSTACK_HELM_CHARTS = (
    "mariadb", "memcached", "rabbitmq", "openvswitch", "ovn", "libvirt", "keystone",
    "glance", "placement", "nova", "neutron", "cinder", "heat", "horizon",
)  # fmt: skip


def _median_ms(action: Callable[[], object], before: Callable[[], None] = lambda: None) -> float:
    timings = []
    for _ in range(ROUNDS):
        before()
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def in_process() -> None:
    print(f"in-process, median of {ROUNDS} (ms):")
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        text = path.read_text()
        rendered = plan(load_cloud_text(text))  # compiles the templates once, as the operator does
        objects = rendered.objects()

        def render(text: str = text) -> object:
            return plan(load_cloud_text(text))

        first = _median_ms(render, before=templates.forget_parses)
        again = _median_ms(render)
        dump = _median_ms(partial(to_yaml, objects))
        print(
            f"  {path.name:20} first {first:6.1f}  again {again:6.1f}  yaml {dump:6.1f}"
            f"  ({len(objects)} objects in {len(rendered.steps)} steps, {len(to_yaml(objects))} bytes)"
        )


def _cpu_seconds(argv: list[str], cwd: Path | None = None) -> float:
    """CPU time of one run of `argv` and everything it started, from the kernel's accounting."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _helm() -> str | None:
    found = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "helm" / "helm.py")], capture_output=True, text=True, check=False
    )
    return found.stdout.strip() if found.returncode == 0 else None


def whole_process(openstack_helm: Path) -> None:
    stackops = [sys.executable, "-m", "stackops.cli", "render", "-f", str(ROOT / "examples" / "minimal.yaml")]
    _cpu_seconds(stackops)  # warm-up: bytecode and compiled templates written once
    ours = [_cpu_seconds(stackops) for _ in range(PROCESS_ROUNDS)]
    print(f"whole process, CPU seconds, median of {PROCESS_ROUNDS}:")
    print(f"  stackops render (109 objects)     {statistics.median(ours):6.3f}  (min {min(ours):.3f})")
    helm = _helm()
    charts = [openstack_helm / chart for chart in OPENSTACK_HELM_CHARTS]
    if helm is None or not all((chart / "Chart.yaml").exists() for chart in charts):
        print(f"  helm template: not measured (helm or the charts under {openstack_helm} are missing)")
        return
    for chart in charts:
        if not (chart / "charts").is_dir():
            subprocess.run([helm, "dependency", "build"], cwd=chart, check=True, capture_output=True)

    def helm_all() -> float:
        return sum(
            _cpu_seconds([helm, "template", chart.name, str(chart), "--namespace", "openstack"]) for chart in charts
        )

    helm_all()
    theirs, ratios = [], []
    for _ in range(PROCESS_ROUNDS):  # in turn, so a drift in the machine's speed hits both
        mine, other = _cpu_seconds(stackops), helm_all()
        theirs.append(other)
        ratios.append(mine / other)
    print(f"  helm template, {len(charts)} charts          {statistics.median(theirs):6.3f}  (min {min(theirs):.3f})")
    print(f"  stackops / helm, pair by pair     {statistics.median(ratios):6.3f}  (min {min(ratios):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--openstack-helm",
        type=Path,
        default=Path(os.environ.get("OPENSTACK_HELM") or cache_root() / "openstack-helm"),
        help="a checkout of openstack-helm (default: $OPENSTACK_HELM or $STACKOPS_CACHE/openstack-helm)",
    )
    args = parser.parse_args()
    in_process()
    whole_process(args.openstack_helm)


if __name__ == "__main__":
    main()
