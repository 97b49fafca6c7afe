"""Write operator/stackops/services/policies/<release>.json: the policy rules each OpenStack service
defines at each release, and its defaults for `[oslo_policy] enforce_scope` / `enforce_new_defaults`.

`stackops validate` refuses a policy override of a rule the service does not define (the way
oslo-config-validator refuses an unknown option); the operator cannot import every service's package
(they pin conflicting versions), so the rule names are read here, once per release, from the very
packages the release installs: the service's wheel (no dependencies) is downloaded, its policies
package (the `oslo.policy.policies` entry point) is imported alone beside oslo.policy, and
`list_rules()` names the rules. Run again when a release's package requirements change:

    .venv/bin/python hack/policies/generate.py [--release 2026.1 ...] [--service designate ...]

tests/real/test_policy.py checks the default release's file against the installed packages.
"""

from __future__ import annotations

import argparse
import configparser
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from tests.support.service_venv import ensure_venv  # noqa: E402

from stackops.api.releases import RELEASES  # noqa: E402
from stackops.services import all_services, policy  # noqa: E402

OUT = ROOT / "operator" / "stackops" / "services" / "policies"
DOCS = ROOT / "docs" / "policy.md"
TABLE_START, TABLE_END = "<!-- generated: policy defaults -->", "<!-- end: policy defaults -->"
# what the policies packages import besides themselves (neutron's build on neutron-lib's rule helpers)
TOOLS = ["oslo.policy", "oslo.log", "neutron-lib"]
# what one service's policies import beside those (octavia's constants are octavia-lib's)
SERVICE_TOOLS: dict[str, list[str]] = {"octavia": ["octavia-lib"]}
# oslo.policy's own defaults since 4.4 (2024.2); a service may set others with policy_opts.set_defaults
OSLO_DEFAULTS = {"enforce_scope": True, "enforce_new_defaults": True}

LIST_RULES = """
import importlib, json, sys
module, function = sys.argv[1].split(":")
rules = getattr(importlib.import_module(module), function)()
print(json.dumps(sorted({rule.name for rule in rules})))
"""


def download(requirement: str, dest: Path) -> Path:
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*pip, "--dest", str(dest), requirement], check=True)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"{requirement}: expected one wheel, found {[w.name for w in wheels]}")
    return wheels[0]


def entry_point(wheel: zipfile.ZipFile) -> str:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(name).decode())
    (target,) = parser["oslo.policy.policies"].values()
    return target


def extract_policies(wheel: zipfile.ZipFile, module: str, dest: Path) -> None:
    """The policies package, with the plain modules beside it (designate's policies import
    designate.common.constants), its parent packages empty: importing nova.policies must not run
    nova/__init__.py and everything it pulls in."""
    folder = module.replace(".", "/") + "/"
    parent = folder.rstrip("/").rpartition("/")[0] + "/"
    for name in wheel.namelist():
        beside = name.startswith(parent) and "/" not in name[len(parent) :] and not name.endswith("/__init__.py")
        if (name.startswith(folder) or beside) and name.endswith(".py") and "/tests/" not in name:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(wheel.read(name))
    parts = module.split(".")
    for depth in range(1, len(parts)):
        (dest / "/".join(parts[:depth]) / "__init__.py").touch()
    extract_imported(wheel, parts[0], dest)


def extract_imported(wheel: zipfile.ZipFile, top: str, dest: Path) -> None:
    """The package's plain modules the extracted ones import from elsewhere in it (octavia's
    policies import octavia.common.constants), and theirs, with empty parent packages."""
    names = set(wheel.namelist())
    pending = [path for path in dest.rglob("*.py")]
    while pending:
        text = pending.pop().read_text(errors="replace")
        for dotted, name in re.findall(rf"^from ({top}(?:\.\w+)*) import (\w+)", text, flags=re.MULTILINE):
            for candidate in (f"{dotted}.{name}", dotted):
                path = candidate.replace(".", "/") + ".py"
                if path in names and not (dest / path).exists():
                    (dest / path).parent.mkdir(parents=True, exist_ok=True)
                    (dest / path).write_bytes(wheel.read(path))
                    pending.append(dest / path)
                    for depth in range(1, candidate.count(".") + 1):
                        (dest / "/".join(candidate.split(".")[:depth]) / "__init__.py").touch()
                    break


def enforce_defaults(wheel: zipfile.ZipFile) -> dict[str, bool]:
    """The service's own `policy_opts.set_defaults(..., enforce_scope=…)`, where it has one."""
    found = dict(OSLO_DEFAULTS)
    for name in wheel.namelist():
        if not name.endswith(".py") or "/tests/" in name:
            continue
        text = wheel.read(name).decode(errors="replace")
        for call in re.findall(r"set_defaults\((.*?)\)", text, flags=re.DOTALL):
            for option in OSLO_DEFAULTS:
                value = re.search(rf"\b{option}\s*=\s*(True|False)\b", call)
                if value:
                    found[option] = value.group(1) == "True"
    return found


def service_rules(python: Path, requirement: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = download(requirement, Path(tmp))
        with zipfile.ZipFile(wheel_path) as wheel:
            target = entry_point(wheel)
            tree = Path(tmp) / "tree"
            extract_policies(wheel, target.split(":")[0], tree)
            defaults = enforce_defaults(wheel)
        listed = subprocess.run(
            [str(python), "-c", LIST_RULES, target],
            env={"PYTHONPATH": str(tree)},
            capture_output=True,
            text=True,
            check=False,
        )
        if listed.returncode != 0:
            raise SystemExit(f"{requirement}: {target}: {listed.stderr.strip()[-2000:]}")
        return {
            "package": wheel_path.name.split("-")[0] + " " + wheel_path.name.split("-")[1],
            **defaults,
            "rules": json.loads(listed.stdout),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", nargs="*", default=sorted(RELEASES))
    parser.add_argument(
        "--service", nargs="*", help="only these services' entries (the others are kept as the files have them)"
    )
    parser.add_argument("--table-only", action="store_true", help="rewrite docs/policy.md's table only")
    args = parser.parse_args()
    if args.table_only:
        write_table()
        return
    services = sorted(s.name for s in all_services() if policy.policy_config_file(s))
    OUT.mkdir(parents=True, exist_ok=True)
    for series in args.release:
        release = RELEASES[series]
        path = OUT / f"{series}.json"
        kept = json.loads(path.read_text()) if args.service and path.exists() else {}
        found = {name: entry for name, entry in kept.items() if name in services}
        for name in args.service or services:
            found[name] = service_rules(tools_python(series, name), release.packages[name])
            print(f"{series} {name}: {found[name]['package']}: {len(found[name]['rules'])} rules", flush=True)
        path.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    write_table()


def tools_python(series: str, service: str) -> Path:
    """The interpreter of a virtualenv that imports `service`'s policies at release `series`."""
    tools = [*TOOLS, *RELEASES[series].constraints, *SERVICE_TOOLS.get(service, [])]
    return ensure_venv(f"policy-tools-{series}", tools) / "python"


def write_table() -> None:
    """The defaults table of docs/policy.md, from every release's file."""
    rows = [
        "| release | service | package | rules | enforce_scope | enforce_new_defaults |",
        "|---|---|---|---:|---|---|",
    ]
    for path in sorted(OUT.glob("*.json")):
        for name, entry in sorted(json.loads(path.read_text()).items()):
            flags = f"{str(entry['enforce_scope']).lower()} | {str(entry['enforce_new_defaults']).lower()}"
            rows.append(f"| {path.stem} | {name} | {entry['package']} | {len(entry['rules'])} | {flags} |")
    text = DOCS.read_text()
    head, rest = text.split(TABLE_START)
    _, tail = rest.split(TABLE_END)
    DOCS.write_text(f"{head}{TABLE_START}\n" + "\n".join(rows) + f"\n{TABLE_END}{tail}")


if __name__ == "__main__":
    main()
