"""EventBus: singleton, middleware order, isolation of failing handlers, sync and async."""

from __future__ import annotations

import asyncio
import logging

import pytest
from flask import Flask
from sqlalchemy import select

from app.core.events import Actor, Event, EventBus, EventType, FunctionHandler
from app.extensions import db
from app.models import AuditLog, User
from app.services.users import create_user


def _collector(name: str, seen: list[str], *types: EventType) -> FunctionHandler:
    return FunctionHandler(name, frozenset(types), lambda e: seen.append(f"{name}:{e.type.value}"))


def test_get_instance_is_a_singleton() -> None:
    assert EventBus.get_instance() is EventBus.get_instance()


def test_handlers_receive_only_subscribed_types() -> None:
    bus, seen = EventBus.get_instance(), []
    bus.subscribe(_collector("users", seen, EventType.USER_CREATED))
    bus.subscribe(_collector("all", seen))
    bus.publish_sync(Event(type=EventType.USER_CREATED))
    bus.publish_sync(Event(type=EventType.ITEM_CREATED))
    assert seen == ["users:user.created", "all:user.created", "all:item.created"]


def test_middleware_runs_in_order_and_can_drop() -> None:
    bus, order, received = EventBus.get_instance(), [], []
    bus.add_middleware(lambda e: order.append("first") or e.with_payload(step=1))
    bus.add_middleware(
        lambda e: order.append("second") or e.with_payload(step=e.payload["step"] + 1)
    )
    bus.add_middleware(lambda e: None if e.payload.get("drop") else e)
    bus.subscribe(FunctionHandler("r", frozenset(), lambda e: received.append(e.payload)))
    bus.publish_sync(Event(type=EventType.ITEM_CREATED))
    bus.publish_sync(Event(type=EventType.ITEM_CREATED, payload={"drop": True}))
    assert order == ["first", "second", "first", "second"]
    assert received == [{"step": 2}]


def test_failing_handler_is_logged_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    bus, seen = EventBus.get_instance(), []

    def broken(_e: Event) -> None:
        raise ValueError("handler bug")

    bus.subscribe(FunctionHandler("broken", frozenset(), broken))
    bus.subscribe(_collector("after", seen))
    with caplog.at_level(logging.ERROR):
        bus.publish_sync(Event(type=EventType.ITEM_UPDATED))
        asyncio.run(bus.publish(Event(type=EventType.ITEM_UPDATED)))
    assert seen == ["after:item.updated", "after:item.updated"]
    assert "handler broken failed" in caplog.text


def test_failing_middleware_does_not_stop_publication(caplog: pytest.LogCaptureFixture) -> None:
    bus, seen = EventBus.get_instance(), []
    bus.add_middleware(lambda e: 1 / 0)  # type: ignore[arg-type,return-value]
    bus.subscribe(_collector("h", seen))
    with caplog.at_level(logging.ERROR):
        bus.publish_sync(Event(type=EventType.ITEM_DELETED))
    assert seen == ["h:item.deleted"]


def test_async_handlers_are_awaited_by_both_entries() -> None:
    bus, seen = EventBus.get_instance(), []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0.01)
        seen.append(event.type.value)

    bus.subscribe(FunctionHandler("async", frozenset(), slow))
    asyncio.run(bus.publish(Event(type=EventType.USER_LOGIN)))
    bus.publish_sync(Event(type=EventType.USER_LOGOUT))

    async def from_inside_a_loop() -> None:
        bus.publish_sync(Event(type=EventType.USER_UPDATED))

    asyncio.run(from_inside_a_loop())
    assert seen == ["user.login", "user.logout", "user.updated"]


def test_subscribing_the_same_name_replaces() -> None:
    bus, seen = EventBus.get_instance(), []
    bus.subscribe(_collector("x", seen))
    bus.subscribe(_collector("x", seen))
    bus.publish_sync(Event(type=EventType.USER_LOGIN))
    assert seen == ["x:user.login"]


def test_audit_handler_writes_rows_in_the_same_transaction(app: Flask) -> None:
    with app.app_context():
        with db.transaction():
            admin = create_user(db.session, email="boss@example.com", role="admin", iterations=1000)
        with db.transaction():
            user = create_user(
                db.session,
                email="new@example.com",
                name="New",
                iterations=1000,
                actor=Actor(user_id=admin.id, ip="203.0.113.9"),
            )
        rows = db.session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        assert [r.event_type for r in rows] == ["user.created", "user.created"]
        last = rows[-1]
        assert (last.actor_id, last.actor_email, last.ip) == (
            admin.id,
            "boss@example.com",
            "203.0.113.9",
        )
        assert (last.subject_type, last.subject_id) == ("user", str(user.id))
        assert last.data == {"email": "new@example.com", "role": "user"}

        with pytest.raises(RuntimeError), db.transaction():
            create_user(db.session, email="ghost@example.com", iterations=1000)
            raise RuntimeError("abort")
        assert db.session.scalar(select(User).where(User.email == "ghost@example.com")) is None
        assert len(db.session.scalars(select(AuditLog)).all()) == 2  # its audit row went too
