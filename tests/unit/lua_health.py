"""Argo CD's health scripts run as Argo CD runs them: Lua 5.1 over the object, for the kinds' health tests."""

from __future__ import annotations

from typing import Any

from lupa import lua51


def run_health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of an Argo CD health script over ``obj``, in Lua 5.1."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)

    def to_lua(value: Any) -> Any:
        if isinstance(value, dict):
            return runtime.table_from({k: to_lua(v) for k, v in value.items()})
        if isinstance(value, list):
            return runtime.table_from([to_lua(v) for v in value])
        return value

    runtime.globals().obj = to_lua(obj)
    result = runtime.execute(script)
    return str(result["status"]), str(result["message"])
