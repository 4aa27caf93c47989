"""Typed reader for htmx 4 request headers and the page-or-fragment render helper.

htmx 4 names elements as `tag#id` in HX-Target / HX-Source and sends
HX-Request-Type `partial` or `full` (boosted links are `full`). Views never read
these headers themselves; they call `htmx()` or `render()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Response, make_response, request
from jinja2_fragments.flask import render_block


def _element_id(value: str | None) -> str | None:
    """`div#items-table` -> `items-table`; a bare `items-table` is accepted too."""
    if not value:
        return None
    return value.rsplit("#", 1)[-1] or None


@dataclass(frozen=True)
class HtmxDetails:
    """What htmx said about the current request."""

    request: bool
    target: str | None
    source: str | None
    request_type: str | None
    boosted: bool
    history_restore: bool
    current_url: str | None

    @property
    def wants_fragment(self) -> bool:
        """A partial swap: not a boosted link, not a history restore, not a full-page request."""
        return (
            self.request
            and not self.boosted
            and not self.history_restore
            and self.request_type != "full"
        )

    def targets(self, element_id: str) -> bool:
        """A partial swap aimed at this element (its fragment is what the answer must be)."""
        return self.wants_fragment and self.target == element_id


def htmx() -> HtmxDetails:
    """Read the HX-* headers of the current request.

    Straight from the WSGI environ: werkzeug's Headers.get raises and catches an
    exception for every header that is absent, which is most of these most of the time.
    """
    h = request.environ
    return HtmxDetails(
        request=h.get("HTTP_HX_REQUEST") == "true",
        target=_element_id(h.get("HTTP_HX_TARGET")),
        source=_element_id(h.get("HTTP_HX_SOURCE")),
        request_type=h.get("HTTP_HX_REQUEST_TYPE"),
        boosted=h.get("HTTP_HX_BOOSTED") == "true",
        history_restore=h.get("HTTP_HX_HISTORY_RESTORE_REQUEST") == "true",
        current_url=h.get("HTTP_HX_CURRENT_URL"),
    )


def render(
    template: str,
    *,
    fragments: Mapping[str, str] | None = None,
    out_of_band: Sequence[str] = (),
    status: int = 200,
    **context: Any,
) -> Response:
    """Render the whole page, or only the block an HTMX request targets.

    `fragments` maps element ids to block names; only those blocks can be
    rendered alone (an allowlist), anything else gets the full page. Blocks in
    `out_of_band` ride along with a fragment (rendered with `oob=True`, so they
    mark themselves hx-swap-oob): page parts outside the fragment that show its state.
    """
    details = htmx()
    block = (fragments or {}).get(details.target or "") if details.wants_fragment else None
    if block:
        body = render_block(template, block, **context)
        for name in out_of_band:
            body += render_block(template, name, **{**context, "oob": True})
        body += _flashes_out_of_band()
    else:
        from flask import render_template

        body = render_template(template, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def _flashes_out_of_band() -> str:
    """Pending flash messages, swapped into #flashes beside the fragment (htmx OOB swap)."""
    from flask import get_flashed_messages, render_template

    messages = get_flashed_messages(with_categories=True)
    if not messages:
        return ""
    return render_template("_flashes.html", messages=messages, oob=True)


def hx_redirect(location: str) -> Response:
    """Tell htmx to navigate (a 303 for plain browsers is the caller's other branch)."""
    response = make_response("", 204)
    response.headers["HX-Redirect"] = location
    return response


def redirect_303(location: str) -> Response:
    """A plain See Other redirect (typed as Flask's Response, unlike flask.redirect)."""
    response = make_response("", 303)
    response.headers["Location"] = location
    return response
