"""The App class (app/core/flask_app.py): what it remembers changes no answer."""

from __future__ import annotations

from collections import ChainMap
from typing import Any

from flask import Flask
from jinja2 import DictLoader

from app.core.flask_app import App, TemplateGlobals

TEMPLATES = {
    "macros.html": "{% macro hello() %}{{ greeting }}, {{ who }}{% endmacro %}",
    "page.html": '{% from "macros.html" import hello %}{{ hello() }}|{{ who }}',
}


def make_app(cls: type[Flask] = App) -> Any:
    app = cls(__name__)
    app.jinja_env.loader = DictLoader(TEMPLATES)
    return app


def test_ensure_sync_hands_back_sync_functions_and_remembers_them() -> None:
    app = make_app()

    def view() -> str:
        return "ok"

    assert app.ensure_sync(view) is view
    assert app._synced == {view: view}
    assert app.ensure_sync(view) is view


def test_ensure_sync_still_wraps_coroutine_functions_and_accepts_unhashable_callables() -> None:
    app = make_app()

    async def coroutine_view() -> str:
        return "ok"

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> str:
            return "ok"

    calls: list[Any] = []
    app.async_to_sync = lambda func: calls.append(func) or (lambda: "wrapped")  # type: ignore[method-assign]
    assert app.ensure_sync(coroutine_view)() == "wrapped" and calls == [coroutine_view]
    assert app.ensure_sync(coroutine_view)() == "wrapped" and calls == [coroutine_view]  # once
    unhashable = Unhashable()
    assert app.ensure_sync(unhashable) is unhashable


def test_views_and_hooks_run_as_before() -> None:
    app = make_app()
    seen: list[str] = []
    app.before_request(lambda: seen.append("before"))
    app.after_request(lambda response: seen.append("after") or response)
    app.add_url_rule("/", "index", lambda: "hello")
    client = app.test_client()
    for _ in range(2):
        assert client.get("/").get_data(as_text=True) == "hello"
    assert seen == ["before", "after", "before", "after"]


def test_template_globals_answer_as_jinjas_chain_map_does() -> None:
    mine, shared = {"a": 1}, {"b": 2, "a": 0}
    assert dict(TemplateGlobals(mine, shared)) == dict(ChainMap(mine, shared))
    assert TemplateGlobals(mine, shared).keys() == ChainMap(mine, shared).keys() == {"a", "b"}


def test_imports_render_what_flask_renders() -> None:
    """An imported macro sees the globals, not the page's variables; one added after the
    first render reaches the page but not the macro Jinja already made (as in Flask)."""
    renders = []
    for app in (make_app(App), make_app(Flask)):
        app.jinja_env.globals["greeting"] = "Hello"
        page = app.jinja_env.get_template("page.html")
        first = page.render(who="Ada")
        app.jinja_env.globals["who"] = "world"
        renders.append((first, page.render(), type(page.globals)))
    assert renders[0][:2] == renders[1][:2] == ("Hello, |Ada", "Hello, |world")
    assert renders[0][2] is TemplateGlobals
