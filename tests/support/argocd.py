"""Running docs/argocd-health.lua as Argo CD does: the object as the global `obj`, the script's
return value read as {status, message}. Lua 5.1, the dialect of Argo CD's gopher-lua."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lupa.lua51 as lua

SCRIPT = Path(__file__).resolve().parent.parent.parent / "docs" / "argocd-health.lua"
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def _to_lua(runtime: lua.LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    runtime = lua.LuaRuntime(unpack_returned_tuples=False)
    # through JSON, as Argo CD gets it from the API server: plain maps, lists, strings, numbers
    runtime.globals()["obj"] = _to_lua(runtime, json.loads(json.dumps(obj)))
    # lupa types what a script returns as object; a table's fields are Lua values, Any to Python
    hs: Any = runtime.execute(SCRIPT.read_text())
    assert lua.lua_type(hs) == "table", f"the script returned {hs!r}, not a table"
    status, message = str(hs["status"]), str(hs["message"])
    assert status in ARGO_STATUSES, status
    return status, message
