"""Server-side sessions in Redis, so signing out really ends a session.

The cookie holds only a random id; the data lives under `<prefix>:session:<id>`
with a sliding TTL. Each user's session ids are indexed so "log out
everywhere" and password changes can delete them all at once.

While Redis is unavailable a request gets a `FallbackSession`: a signed cookie
of its own (never the server session's cookie), enough for an anonymous visitor's
CSRF token and messages, so public pages and the sign-in form keep working. It
never holds a sign-in: signing in, and any page that needs one, answer 503 until
Redis is back (app/policy.py), so no request passes without its session check.
API requests carry bearer tokens and get no session at all.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from flask import Flask, Request, Response
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import (
    SecureCookieSession,
    SecureCookieSessionInterface,
    SessionInterface,
    SessionMixin,
)
from werkzeug.datastructures import CallbackDict

from app.core.breaker import ServiceDown
from app.core.redis_conn import GuardedRedis

_SID = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
CSRF_KEY = "csrf_token"  # Flask-WTF's raw token in the session (WTF_CSRF_FIELD_NAME)
OUTAGE_CSRF_KEY = "_csrf_outage"  # the token a stand-in session gave this browser's forms
BROWSER_SESSION_TTL = 24 * 3600
ANONYMOUS_SESSION_TTL = 3600


class SessionSerializer(TaggedJSONSerializer):
    """Flask's tagged JSON, read in one pass: `json.loads` untags each object as it is
    built, where Flask's `loads` parses first and then copies every dict and list to untag
    it (a third of a session load's CPU)."""

    def loads(self, value: str | bytes) -> Any:
        return json.loads(value, object_hook=self.untag)


_serializer = SessionSerializer()


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
        self.expired = False  # the browser sent an id Redis no longer knows
        self.carried = False  # seeded from an outage's fallback cookie


class FallbackSession(SecureCookieSession):
    """The session of a request made while Redis is unavailable (see the module docstring)."""

    def __init__(self, initial: Any = None, *, signed_in_elsewhere: bool = False) -> None:
        super().__init__(initial)
        self.signed_in_elsewhere = signed_in_elsewhere  # a server session cookie came along


class _FallbackCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions under a cookie name of their own."""

    session_class = FallbackSession

    def get_cookie_name(self, app: Flask) -> str:
        return f"{app.config['SESSION_COOKIE_NAME']}-fallback"


class RedisSessionInterface(SessionInterface):
    """Flask SessionInterface storing sessions in Redis."""

    def __init__(
        self, client: GuardedRedis, prefix: str, ttl_seconds: int, *, no_session_under: str = ""
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl = ttl_seconds  # "keep me signed in" (a permanent session)
        self.no_session_under = no_session_under  # a path prefix (the API) that has none
        self.fallback = _FallbackCookies()

    def _ttl_for(self, session: ServerSession) -> int:
        """Remembered sessions live long; browser sessions a day; anonymous ones an hour."""
        if session.permanent:
            return self.ttl
        return BROWSER_SESSION_TTL if session.get("_user_id") else ANONYMOUS_SESSION_TTL

    def _key(self, sid: str) -> str:
        return f"{self.prefix}:session:{sid}"

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}:user-sessions:{user_id}"

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if self.no_session_under and request.path.startswith(self.no_session_under):
            return self.make_null_session(app)
        sid = request.cookies.get(self.get_cookie_name(app), "")
        known = bool(_SID.match(sid))
        carried = self._fallback_data(app, request)
        if known:
            try:
                raw = self.redis.read(self._key(sid))
            except ServiceDown:
                return FallbackSession(carried, signed_in_elsewhere=True)
            if raw is not None:
                found = ServerSession(_serializer.loads(raw), sid=sid, new=False)
                _keep_outage_token(found, carried)
                return found
        elif self.redis.breaker.state == "open":
            return FallbackSession(carried)
        session = ServerSession(carried, sid=secrets.token_urlsafe(32), new=True)
        session.expired = known
        session.carried = bool(carried)  # what a fallback cookie held moves in here
        session.modified = bool(carried)
        return session

    def _fallback_data(self, app: Flask, request: Request) -> dict[str, Any]:
        """What an outage's fallback cookie holds (a CSRF token, messages), if one came."""
        if self.fallback.get_cookie_name(app) not in request.cookies:
            return {}
        return dict(self.fallback.open_session(app, request) or {})

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if isinstance(session, FallbackSession):
            self.fallback.save_session(app, session, response)
            return
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
        try:
            self._write(session)
        except ServiceDown:
            if not session.get("_user_id"):  # an anonymous visitor's token survives the outage
                self.fallback.save_session(app, FallbackSession(dict(session)), response)
            return  # a sign-in is never kept outside Redis; the old cookie stays
        if session.carried:
            response.delete_cookie(self.fallback.get_cookie_name(app), domain=domain, path=path)
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

    def store_now(self, session: SessionMixin) -> None:
        """Write a new sign-in at once: a Redis that refuses writes (full, read-only) then
        answers 503 in the request instead of the sign-in being dropped after the answer."""
        if isinstance(session, ServerSession):
            self._write(session)

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


def _keep_outage_token(session: ServerSession, carried: dict[str, Any]) -> None:
    """A signed-in browser that loaded a public form (sign-in, sign-up) while Redis could
    not read its session holds a stand-in token; its session has another. The stand-in
    token is kept beside it as a second valid one (app/security.py checks both), so
    neither that form nor one loaded before the outage fails, and the fallback cookie is
    dropped."""
    token = carried.get(CSRF_KEY)
    if isinstance(token, str) and token != session.get(CSRF_KEY):
        session[OUTAGE_CSRF_KEY] = token
    session.carried = bool(carried)
