"""Server-side sessions in Redis, so signing out really ends a session.

The cookie holds only a random id; the data lives under `<prefix>:session:<id>`
with a sliding TTL. Each user's session ids are indexed so "log out
everywhere" and password changes can delete them all at once.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import redis
from flask import Flask, Request, Response
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

_SID = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
BROWSER_SESSION_TTL = 24 * 3600
ANONYMOUS_SESSION_TTL = 3600
_serializer = TaggedJSONSerializer()


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """Session data plus its id; `modified` tracks writes."""

    def __init__(self, initial: dict[str, Any] | None = None, *, sid: str, new: bool) -> None:
        def on_update(_self: CallbackDict[str, Any]) -> None:
            self.modified = True

        super().__init__(initial or {}, on_update)
        self.sid = sid
        self.new = new
        self.modified = False
        self.rotated_from: str | None = None


class RedisSessionInterface(SessionInterface):
    """Flask SessionInterface storing sessions in Redis."""

    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl = ttl_seconds  # "keep me signed in" (a permanent session)

    def _ttl_for(self, session: ServerSession) -> int:
        """Remembered sessions live long; browser sessions a day; anonymous ones an hour."""
        if session.permanent:
            return self.ttl
        return BROWSER_SESSION_TTL if session.get("_user_id") else ANONYMOUS_SESSION_TTL

    def _key(self, sid: str) -> str:
        return f"{self.prefix}:session:{sid}"

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}:user-sessions:{user_id}"

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app), "")
        if _SID.match(sid):
            raw = self.redis.get(self._key(sid))
            if raw is not None:
                return ServerSession(_serializer.loads(raw), sid=sid, new=False)  # type: ignore[arg-type]
        return ServerSession(sid=secrets.token_urlsafe(32), new=True)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        name, domain, path = (
            self.get_cookie_name(app),
            self.get_cookie_domain(app),
            self.get_cookie_path(app),
        )
        if session.rotated_from:
            self.redis.delete(self._key(session.rotated_from))
        if not session:
            if session.modified or session.rotated_from:
                self.redis.delete(self._key(session.sid))
                response.delete_cookie(name, domain=domain, path=path)
            return
        if session.accessed:
            response.vary.add("Cookie")
        if not (session.modified or self.should_set_cookie(app, session)):
            return
        self._write(session)
        response.set_cookie(
            name,
            session.sid,
            max_age=self.ttl if session.permanent else None,
            httponly=self.get_cookie_httponly(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
            domain=domain,
            path=path,
        )

    def _write(self, session: ServerSession) -> None:
        pipe = self.redis.pipeline()
        ttl = self._ttl_for(session)
        pipe.set(self._key(session.sid), _serializer.dumps(dict(session)), ex=ttl)
        user_id = session.get("_user_id")
        if user_id:
            uid = str(user_id).split(":", 1)[0]
            pipe.sadd(self._user_key(uid), session.sid)
            pipe.expire(self._user_key(uid), self.ttl)
        pipe.execute()

    def end_user_sessions(self, user_id: int) -> int:
        """Delete every stored session of a user; returns how many there were."""
        sids = [
            s.decode() if isinstance(s, bytes) else str(s)
            for s in self.redis.smembers(self._user_key(str(user_id)))
        ]
        if sids:
            self.redis.delete(*(self._key(s) for s in sids))
        self.redis.delete(self._user_key(str(user_id)))
        return len(sids)


def rotate_session(session: SessionMixin) -> None:
    """Start a fresh session (new id, no old data) to defeat session fixation."""
    session.clear()
    if isinstance(session, ServerSession):
        session.rotated_from = session.sid if not session.new else None
        session.sid = secrets.token_urlsafe(32)
        session.modified = True
