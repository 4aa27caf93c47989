"""The session store reads Flask's tagged JSON in one pass; it must read what Flask reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.json.tag import TaggedJSONSerializer
from markupsafe import Markup

from app.core.sessions import SessionSerializer

SESSIONS: list[dict[str, Any]] = [
    {},
    {"_user_id": "7:3", "_fresh": True, "csrf_token": "a" * 40},
    {"_flashes": [("success", "Saved."), ("error", "“Lamp” <b>")]},
    {"raw": b"\x00\xffbytes", "when": datetime(2026, 1, 31, 9, 5, tzinfo=UTC)},
    {"html": Markup("<em>hi</em>"), "id": uuid.UUID(int=5), "nested": {" t": [1, (2, 3)]}},
    {"deep": [{"a": ({"b": (b"x",)},)}], "text": '{" t":[1]} is just text'},
]


@pytest.mark.parametrize("data", SESSIONS)
def test_reads_what_flask_writes_as_flask_reads_it(data: dict[str, Any]) -> None:
    flask_serializer = TaggedJSONSerializer()
    stored = flask_serializer.dumps(data)

    read = SessionSerializer().loads(stored)

    assert read == flask_serializer.loads(stored) == data
    assert read == SessionSerializer().loads(stored.encode())  # Redis returns bytes
