"""Median time to render every example cloud (parse, validate, plan, serialise), in-process.

Prints figures only; nothing here asserts a time. Run: `make bench`.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from stackops.api.validation import load_cloud_text
from stackops.plan import plan
from stackops.render.output import to_yaml

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 50


def render_once(text: str) -> tuple[int, int, int]:
    """Bytes of YAML, objects and steps of one cloud."""
    rendered = plan(load_cloud_text(text))
    objects = rendered.objects()
    return len(to_yaml(objects)), len(objects), len(rendered.steps)


def main() -> None:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        text = path.read_text()
        size, objects, steps = render_once(text)  # warm: templates compiled once per process, as in the operator
        timings = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            render_once(text)
            timings.append(time.perf_counter() - start)
        median_ms = statistics.median(timings) * 1000
        low, high = min(timings) * 1000, max(timings) * 1000
        print(
            f"{path.name:24} median {median_ms:7.2f} ms  min {low:7.2f}  max {high:7.2f}"
            f"  ({ROUNDS} rounds; {objects} objects in {steps} steps, {size} bytes)"
        )


if __name__ == "__main__":
    main()
