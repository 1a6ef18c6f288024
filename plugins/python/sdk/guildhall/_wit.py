"""The generated bindings, loaded once when the component is built.

`guildhall plugins build` generates the component's WIT world from `plugin.toml`, so a
platform interface exists only when the manifest declares it (`kv` only with `kv = true`, and
so on). Each binding is imported here, at build time (componentize-py snapshots the
interpreter after importing the app), and is `None` when the world lacks it; the SDK's
modules ask for one with `require`, which names the declaration that is missing.

Outside a component (plain `python` or `pytest` on your own machine) every binding is `None`:
pure logic can be tested there, and calling the platform raises `CapabilityError`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional

from .errors import CapabilityError


def _load(name: str) -> Optional[ModuleType]:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# wasi:http/types, wasi:io/streams and the export protocol: present in every plugin.
types = _load("wit_world.imports.types")
streams = _load("wit_world.imports.streams")
exports = _load("wit_world.exports")
runtime_types = _load("componentize_py_types")

# guildhall:platform interfaces, present when the manifest declares them.
context = _load("wit_world.imports.context")
kv = _load("wit_world.imports.kv")
events = _load("wit_world.imports.events")
authz = _load("wit_world.imports.authz")
session = _load("wit_world.imports.session")
secrets = _load("wit_world.imports.secrets")

_DECLARATION = {
    "context": "nothing (it is always there): build the plugin with `guildhall plugins build`",
    "kv": "`kv = true` under [capabilities] in plugin.toml",
    "events": "`events = true` under [capabilities] in plugin.toml",
    "authz": "`authz = true` under [capabilities] in plugin.toml",
    "session": "`session = true` under [capabilities] in plugin.toml",
    "secrets": "the secret under [secrets] in plugin.toml",
}


def require(name: str) -> ModuleType:
    """The binding of platform interface `name`, or `CapabilityError` naming what to declare."""
    module = globals().get(name)
    if module is None:
        raise CapabilityError(
            f"this plugin has no `{name}` capability; it needs {_DECLARATION[name]}"
        )
    return module


def err_value(exc: BaseException) -> object:
    """The payload of a WIT `result` error raised by a binding (`componentize_py_types.Err`)."""
    return getattr(exc, "value", exc)


def is_err(exc: BaseException) -> bool:
    """Whether `exc` is a WIT `result` error raised by a binding."""
    return runtime_types is not None and isinstance(exc, runtime_types.Err)
