"""A yardstick for bench/tables.py: the items table written by hand, with nothing else.

SQLAlchemy Core (one SELECT of 25 rows with the owner joined), a count taken once
and kept, and a Jinja template with the same columns and a prev/next pager; no
sign-in, sessions, CSRF, metrics or middleware. It shows what a table page costs
on this machine before any of the app's features, so the app's figure can be
read against it. Served like the app: ``gunicorn -c gunicorn.conf.py
bench.reference_app:app`` with DATABASE_URL pointing at the seeded database.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, request
from jinja2 import Environment
from sqlalchemy import create_engine, func, select

from app.models.item import Item
from app.models.user import User
from app.settings import normalize_database_url

PER_PAGE = 25

engine = create_engine(normalize_database_url(os.environ["DATABASE_URL"]))
page_rows = (
    select(Item.id, Item.name, Item.status, Item.price, Item.created_at, User.name.label("owner"))
    .outerjoin(User, User.id == Item.owner_id)
    .order_by(Item.created_at.desc(), Item.id.desc())
    .limit(PER_PAGE)
)
_count: dict[str, int] = {}

template = Environment(autoescape=True).from_string(
    """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Items</title></head>
<body><h1>Items</h1>
<table><thead><tr><th><a href="?sort=name">Name</a></th><th>Status</th><th>Price</th>
<th>Owner</th><th><a href="?sort=created_at">Created</a></th></tr></thead><tbody>
{% for row in rows %}<tr><td><a href="/items/{{ row.id }}">{{ row.name }}</a></td>
<td>{{ row.status }}</td><td>${{ '{:,.2f}'.format(row.price) }}</td><td>{{ row.owner }}</td>
<td>{{ row.created_at.strftime('%Y-%m-%d %H:%M') }}</td></tr>
{% endfor %}</tbody></table>
<nav>Page {{ page }} of {{ '{:,}'.format(pages) }}
{% if page > 1 %}<a href="?page={{ page - 1 }}">Prev</a>{% endif %}
<a href="?page={{ page + 1 }}">Next</a></nav></body></html>"""
)

app = Flask(__name__)


@app.get("/")
def items() -> str:
    page = max(1, request.args.get("page", 1, type=int))
    with engine.connect() as conn:
        if "items" not in _count:
            _count["items"] = int(conn.scalar(select(func.count()).select_from(Item)) or 0)
        rows: list[Any] = list(conn.execute(page_rows.offset((page - 1) * PER_PAGE)))
    total = _count["items"]
    return template.render(rows=rows, page=page, pages=-(-total // PER_PAGE))
