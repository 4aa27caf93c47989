"""What a soak user does: browse tables, edit a profile, read the API, sign in, create items.

Each simulated person comes from an address of their own (X-Forwarded-For; the app runs
with TRUSTED_PROXIES=1) and signs in as one of three accounts of their own in turn, so
sign-ins stay under the per-IP and per-account limits as real users' would. About one
request in ten is a sign-in (page or API), each a 600,000-iteration PBKDF2 hash.

A GET is retried once when its kept-alive connection closed before any answer, as
browsers do; POSTs never are.

Every request is written as a JSON line to $SOAK_LOG: start time, duration, status, a
name and its kind (page, signin, api, write); item creates add the unique item name, so
the runner can count what was answered against the rows in the database.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import uuid
from typing import Any

from locust import HttpUser, between, events, task
from locust.clients import LocustHttpAdapter
from urllib3.util.retry import Retry

PASSWORD = "demo-password"
USERS = int(os.environ.get("SOAK_USERS", "50"))
PHASE = os.environ.get("SOAK_PHASE", "soak")
TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')
SORTS = ("created_at", "name", "price", "status", "updated_at")
WORDS = ("falcon", "red", "blue", "amber", "teal", "coral", "slate", "green")
PARTIAL = {"HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#items-table"}
SUCCESS = range(200, 400)

_numbers = itertools.count()
_log = open(os.environ.get("SOAK_LOG", os.devnull), "a", buffering=1)  # noqa: SIM115


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response: Any,
    exception: BaseException | None,
    context: dict[str, Any],
    start_time: float | None = None,
    **_: Any,
) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    line = {"t": start_time, "ms": round(response_time, 1), "s": status, "n": name}
    line.update(context)
    _log.write(json.dumps(line) + "\n")


class Person(HttpUser):
    """One of the soak's users, signed in on the pages and holding an API token."""

    wait_time = between(3, 9)  # seconds between clicks
    csrf: str = ""
    token: str = ""
    signed_in = False  # on the pages; a failed sign-in (say, 503 in an outage) is retried first

    def on_start(self) -> None:
        self.number = next(_numbers)
        self.accounts = [f"demo.user{self.number + 1 + k * USERS}@example.com" for k in range(3)]
        self.email = self.accounts[0]
        self.client.headers["X-Forwarded-For"] = f"10.{self.number // 250}.{self.number % 250}.7"
        # As browsers do (RFC 9112, 9.3.1): a GET whose kept-alive connection closed before
        # any answer is sent again once. POSTs never are: a dropped write shows as status 0.
        retry = Retry(
            total=1, connect=0, read=1, status=0, other=0, allowed_methods={"GET"},
            respect_retry_after_header=False, raise_on_status=False,
        )  # fmt: skip
        self.client.mount("http://", LocustHttpAdapter(pool_manager=None, max_retries=retry))
        self.sign_in_page()  # the API token is fetched on first use, spreading the hashes

    # --- helpers ------------------------------------------------------------------------

    def _call(self, method: str, url: str, name: str, kind: str, **kw: Any) -> Any:
        ctx = {"k": kind, **kw.pop("ctx", {})}
        return self.client.request(method, url, name=name, context=ctx, allow_redirects=False, **kw)

    def _page(self, url: str, name: str, **kw: Any) -> Any:
        if not self.signed_in:
            self.sign_in_page()
            return None
        response = self._call("GET", url, name, "page", **kw)
        if response.status_code == 200 and (found := TOKEN.search(response.text)):
            self.csrf = found.group(1)
        elif response.status_code == 401 or "/login" in response.headers.get("Location", ""):
            self.signed_in = False  # the session is gone: sign in again, as a person would
        return response

    def _api(self, method: str, url: str, name: str, **kw: Any) -> Any:
        if not self.token:
            self.sign_in_api()
        headers = {"Authorization": f"Bearer {self.token}"}
        response = self._call(method, url, name, kw.pop("kind", "api"), headers=headers, **kw)
        if response.status_code == 401:
            self.sign_in_api()
        return response

    # --- sign-ins -----------------------------------------------------------------------

    def sign_in_page(self) -> None:
        """Sign out, open the form, sign in as the next of this person's accounts."""
        if self.signed_in:
            self._call("POST", "/logout", "POST /logout", "write", data={"csrf_token": self.csrf})
        following = self.accounts[(self.accounts.index(self.email) + 1) % len(self.accounts)]
        form = self._call("GET", "/login", "GET /login", "page")
        if form.status_code == 303:  # still signed in (the sign-out met an outage): carry on
            self.signed_in = True
            self._refresh_token()
            return
        if found := TOKEN.search(form.text or ""):
            self.csrf = found.group(1)
        data = {"email": following, "password": PASSWORD, "csrf_token": self.csrf}
        answer = self._call("POST", "/login", "POST /login", "signin", data=data)
        self.signed_in = answer.status_code == 303
        if not self.signed_in:
            return
        self.email = following  # the profile form sends the email of whoever is signed in
        self._refresh_token()

    def _refresh_token(self) -> None:
        """Open the items page, as the redirect after signing in does, and keep its token."""
        page = self._call("GET", "/items", "GET /items (full)", "page")
        if found := TOKEN.search(page.text or ""):
            self.csrf = found.group(1)

    def sign_in_api(self) -> None:
        body = {"email": self.email, "password": PASSWORD}
        response = self._call("POST", "/api/v1/auth/login", "POST /api/v1/auth/login", "signin",
                              json=body)  # fmt: skip
        if response.status_code == 200:
            self.token = response.json()["access_token"]

    @task(5)
    def sign_in_again(self) -> None:
        if random.random() < 0.5:
            self.sign_in_page()
        else:
            self.sign_in_api()

    # --- tables -------------------------------------------------------------------------

    @task(20)
    def browse_items(self) -> None:
        """Sort and page the items table as htmx does: only the table region comes back."""
        sort, way, page = (
            random.choice(SORTS),
            random.choice(("asc", "desc")),
            random.randint(1, 20),
        )
        url = f"/items?sort={sort}&dir={way}&page={page}"
        self._page(url, "GET /items (htmx)", headers={**PARTIAL, "HX-Current-URL": url})

    @task(6)
    def search_items(self) -> None:
        url = f"/items?q={random.choice(WORDS)}"
        self._page(url, "GET /items?q (htmx)", headers={**PARTIAL, "HX-Current-URL": url})

    @task(3)
    def items_page(self) -> None:
        self._page("/items", "GET /items (full)")

    @task(5)
    def view_item(self) -> None:
        self._page(f"/items/{random.randint(1, 20_000)}", "GET /items/<id>")

    # --- profile ------------------------------------------------------------------------

    @task(4)
    def view_profile(self) -> None:
        self._page("/profile", "GET /profile")

    @task(2)
    def edit_profile(self) -> None:
        """Open the inline editor, change the name (the email stays, so no password needed)."""
        if self._page("/profile/edit", "GET /profile/edit", headers={"HX-Request": "true"}) is None:
            return
        data = {"name": f"Soak Person {random.randint(1, 999)}", "email": self.email}
        headers = {"HX-Request": "true", "X-CSRFToken": self.csrf}
        self._call("POST", "/profile", "POST /profile", "write", data=data, headers=headers)

    # --- API ----------------------------------------------------------------------------

    @task(10)
    def api_items(self) -> None:
        page = random.randint(1, 20)
        self._api("GET", f"/api/v1/items?page={page}", "GET /api/v1/items")

    @task(4)
    def api_me(self) -> None:
        self._api("GET", "/api/v1/me", "GET /api/v1/me")

    # --- writes -------------------------------------------------------------------------

    def _item_name(self) -> str:
        return f"Soak {PHASE} {uuid.uuid4().hex[:12]}"

    @task(3)
    def create_item_page(self) -> None:
        if not self.signed_in:
            self.sign_in_page()
            return
        name = self._item_name()
        data = {"name": name, "price": "12.50", "status": "draft", "csrf_token": self.csrf}
        self._call("POST", "/items", "POST /items", "write", data=data, ctx={"c": name})

    @task(2)
    def create_item_api(self) -> None:
        name = self._item_name()
        body = {"name": name, "price": "7.25", "status": "active"}
        self._api("POST", "/api/v1/items", "POST /api/v1/items", kind="write", json=body,
                  ctx={"c": name})  # fmt: skip
