"""Key-value storage private to this plugin in this tenant: `guildhall:platform/kv`
(declare `kv = true` under `[capabilities]`).

Every council of an install shares the store, so keep each council's data in its own part:
`kv.council_store()` is the store under `council/{council}/` for the council of the request,
with keys relative to it.

    from guildhall import kv

    kv.set_json("settings", {"open": True})
    notices = kv.council_store()                 # keys under council/<council>/
    n = notices.increment("next-id")             # atomic
    notices.set_json(f"notices/{n:06}", {...})
    for key in notices.iter_keys("notices/"):    # every page, ascending
        ...

Values are bytes; `str` values are stored as UTF-8. Failures raise `KvError` (an
`HTTPError`: left uncaught it answers 400, 413, 507 or 503 without the key or value).
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Union

from . import _wit
from .errors import HTTPError

__all__ = [
    "KvError", "Page", "Store", "council_store", "get", "get_text", "get_json", "set",
    "set_json", "delete", "list_keys", "iter_keys", "increment", "compare_and_swap",
    "set_if_absent", "set_json_if_absent",
]

Value = Union[bytes, str]


class KvError(HTTPError):
    """Why a key-value operation failed. `kind` is `invalid-key`, `value-too-large`,
    `quota-exceeded` or `unavailable`; `value` is the WIT error's payload (a length, the
    quota, or the platform's message)."""

    _STATUS = {"invalid-key": 400, "value-too-large": 413, "quota-exceeded": 507, "unavailable": 503}
    _DETAIL = {
        "invalid-key": "a storage key is empty or longer than 512 bytes",
        "value-too-large": "a value is larger than storage allows",
        "quota-exceeded": "this service has used all of its storage",
        "unavailable": "storage is unavailable; try again later",
    }

    def __init__(self, kind: str, value: Any) -> None:
        super().__init__(self._STATUS.get(kind, 503), self._DETAIL.get(kind, "storage failed"))
        self.kind = kind
        self.value = value

    def __str__(self) -> str:
        return f"kv {self.kind}: {self.value}"

    @property
    def not_a_number(self) -> bool:
        """`increment` found a stored value that is not a number."""
        return self.kind == "unavailable" and str(self.value).startswith("not a number")


def _kind(err: Any) -> str:
    name = type(err).__name__.removeprefix("Error_")
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


def _call(fn: str, *args: Any) -> Any:
    binding = _wit.require("kv")
    try:
        return getattr(binding, fn)(*args)
    except Exception as e:
        if _wit.is_err(e):
            err = _wit.err_value(e)
            raise KvError(_kind(err), getattr(err, "value", None)) from None
        raise


def _bytes(value: Value) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _json_bytes(value: Any) -> bytes:
    return _json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Page:
    """One page of `list_keys`: keys in ascending byte order, and the cursor of the next page
    (`None` on the last)."""

    keys: List[str]
    next: Optional[str]


class Store:
    """The store, or the part of it under `prefix` (keys given and returned relative to it)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return self.prefix + key

    def get(self, key: str) -> Optional[bytes]:
        """The value under `key`, or `None`."""
        return _call("get", self._key(key))

    def get_text(self, key: str) -> Optional[str]:
        """The value under `key` as UTF-8 text, or `None`."""
        value = self.get(key)
        return None if value is None else value.decode("utf-8")

    def get_json(self, key: str, default: Any = None) -> Any:
        """The JSON value under `key`, or `default` when there is none."""
        value = self.get(key)
        return default if value is None else _json.loads(value)

    def set(self, key: str, value: Value) -> None:
        """Stores `value` under `key`, replacing any previous value."""
        _call("set", self._key(key), _bytes(value))

    def set_json(self, key: str, value: Any) -> None:
        """Stores `value` as compact JSON under `key`."""
        _call("set", self._key(key), _json_bytes(value))

    def delete(self, key: str) -> bool:
        """Removes `key`; returns whether it existed."""
        return _call("delete", self._key(key))

    def list_keys(self, prefix: str = "", cursor: Optional[str] = None, limit: int = 100) -> Page:
        """One page of the keys starting with `prefix`, after `cursor` (from the previous
        page's `next`), at most `limit` (1 to 1000)."""
        full_cursor = None if cursor is None else self._key(cursor)
        page = _call("list_keys", self._key(prefix), full_cursor, max(1, min(int(limit), 1000)))
        cut = len(self.prefix)
        return Page(
            keys=[k[cut:] for k in page.keys],
            next=None if page.next is None else page.next[cut:],
        )

    def iter_keys(self, prefix: str = "", page_size: int = 1000) -> Iterator[str]:
        """Every key starting with `prefix`, ascending, reading page after page."""
        cursor: Optional[str] = None
        while True:
            page = self.list_keys(prefix, cursor, page_size)
            yield from page.keys
            if page.next is None:
                return
            cursor = page.next

    def increment(self, key: str, delta: int = 1) -> int:
        """Atomically adds `delta` to the number under `key` (missing: 0) and returns the sum."""
        return _call("increment", self._key(key), int(delta))

    def compare_and_swap(self, key: str, old: Optional[Value], new: Value) -> bool:
        """Atomically stores `new` only if `key` holds exactly `old` (`None`: only if absent)."""
        return _call(
            "compare_and_swap", self._key(key), None if old is None else _bytes(old), _bytes(new)
        )

    def set_if_absent(self, key: str, value: Value) -> bool:
        """Atomically stores `value` only if `key` is absent; returns whether it stored it."""
        return _call("set_if_absent", self._key(key), _bytes(value))

    def set_json_if_absent(self, key: str, value: Any) -> bool:
        return _call("set_if_absent", self._key(key), _json_bytes(value))

    def council(self) -> "Store":
        """The part of this store under `council/{council}/` for the request's council."""
        from . import context

        return Store(f"{self.prefix}council/{context.council()}/")


_root = Store()


def council_store() -> Store:
    """The store under `council/{council}/` for the council of this request."""
    return _root.council()


get = _root.get
get_text = _root.get_text
get_json = _root.get_json
set = _root.set
set_json = _root.set_json
delete = _root.delete
list_keys = _root.list_keys
iter_keys = _root.iter_keys
increment = _root.increment
compare_and_swap = _root.compare_and_swap
set_if_absent = _root.set_if_absent
set_json_if_absent = _root.set_json_if_absent
