"""Response helpers every page blueprint uses: redirects that work with and without htmx."""

from __future__ import annotations

from flask import Response

from app.htmx import htmx, hx_redirect, redirect_303


def see_other(location: str) -> Response:
    """After a successful form: 303 for browsers, HX-Redirect for htmx (fetch follows 303s)."""
    if htmx().request:
        return hx_redirect(location)
    return redirect_303(location)
