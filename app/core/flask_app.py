"""The Flask class the app is built on: Flask, minus work it repeats on every request."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, MutableMapping
from typing import Any

from flask import Flask
from flask.templating import Environment

MAX_REMEMBERED_CALLABLES = 1024


class TemplateGlobals(ChainMap[str, Any]):
    """A template's globals (its own over the environment's), as Jinja makes them, with
    `keys()` as a set.

    Each `{% from ... import %}` asks which of the page's globals the imported template
    lacks (`page_keys - globals.keys()`); against a ChainMap's key view that difference
    tests the keys one by one through every map, about 20 µs per import on each render.
    A set, built from the maps as they are now, answers the same in about 2 µs.
    """

    def keys(self) -> set[str]:  # type: ignore[override]
        return set(self)


class AppEnvironment(Environment):
    """Flask's Jinja environment, with TemplateGlobals for every template."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return TemplateGlobals({} if d is None else d, self.globals)


class App(Flask):
    """Flask with `ensure_sync` remembered per function, and AppEnvironment.

    Flask passes every hook, context processor, view and error handler through
    `ensure_sync` each time it calls one, and each pass asks `inspect` whether the
    function is a coroutine function: some 25 times per page. The answer for a given
    function never changes, so it is worked out once.
    """

    jinja_environment = AppEnvironment

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._synced[func]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable: answer it every time
            return super().ensure_sync(func)
        if len(self._synced) >= MAX_REMEMBERED_CALLABLES:  # callables made per request
            self._synced.clear()
        synced = self._synced[func] = super().ensure_sync(func)
        return synced
