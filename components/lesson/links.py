"""The address bar as the lesson's and the class's state: reading and editing the query's `lesson` and `class`
parameters, and the href that must go with a new query."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from dash import no_update

from . import steps


def query_of(search) -> dict[str, str]:
    """An address-bar query as {name: first value}; anything that is not a query gives {}."""
    try:
        query = parse_qs(search.lstrip("?") if isinstance(search, str) else "", max_num_fields=50)
    except ValueError:  # more fields than any link of ours has
        return {}
    return {key: values[0] for key, values in query.items()}


def with_param(search, key: str, value: str | None) -> str:
    """`search` with `key` set to `value`, or without `key` when value is None."""
    query = {k: v for k, v in query_of(search).items() if k != key}
    return "?" + urlencode({**query, **({key: value} if value is not None else {})})


def lesson_index(search) -> int | None:
    """The 0-based step in an address-bar query (`lesson=N`, 1-based), or None."""
    value = query_of(search).get("lesson", "")
    if not (value.isdigit() and len(value) <= 4):
        return None
    index = int(value) - 1
    return index if 0 <= index < len(steps.STEPS) else None


def keep_language(search: str, current) -> str:
    """`search` with the `lang` of the page's address `current` (or without one): a lesson step or the teacher's
    state replaces the address, but each page keeps its own language (students of one class may read five)."""
    return with_param(search, "lang", query_of(current).get("lang"))


def address(search, pathname, current=None) -> tuple:
    """A new address-bar query (keeping the `lang` of `current`, the page's address now), and the href to go
    with it: dcc.Location pushes its stale href prop instead of a new search when its href has changed since the
    page loaded (the page's own link writer replaces the address), so both are set together."""
    if search is no_update:
        return no_update, no_update
    search = keep_language(search, current)
    base = pathname if isinstance(pathname, str) and pathname.startswith("/") and not pathname.startswith("//") \
        else "/"
    return search, base + search
