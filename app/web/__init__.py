"""HTMX page blueprints, one per area."""

from __future__ import annotations

from flask import Flask

from app.web import (
    admin,
    auth,
    client,
    deliveries,
    home,
    imports,
    items,
    jobs,
    mailbox,
    ops,
    payments,
    profile,
    stripe_hooks,
    webhooks,
)
from app.web.chrome import flashes_html, head_assets, nav_html
from app.web.table_html import (
    render_header,
    render_mobile_sort,
    render_pager,
    render_region_attrs,
    render_search_form,
    render_state_inputs,
)


def register_blueprints(app: Flask) -> None:
    """Mount every page blueprint, and the table parts their templates draw."""
    app.add_template_global(nav_html, "nav_html")
    app.add_template_global(head_assets, "head_assets")
    app.add_template_global(flashes_html, "flashes_html")
    app.add_template_global(render_search_form, "table_search_form")
    app.add_template_global(render_header, "table_header")
    app.add_template_global(render_mobile_sort, "table_mobile_sort")
    app.add_template_global(render_pager, "table_pager")
    app.add_template_global(render_state_inputs, "table_state_inputs")
    app.add_template_global(render_region_attrs, "table_region_attrs")
    for module in (
        ops,
        auth,
        home,
        items,
        profile,
        admin,
        imports,
        jobs,
        deliveries,
        mailbox,
        webhooks,
        client,
        payments,
        stripe_hooks,
    ):
        app.register_blueprint(module.bp)
