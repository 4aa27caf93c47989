"""A fake PayPal (OAuth2 token, Orders v2 create / get / capture, captures' refunds) with the
buyer's approval page, served on a loopback port for the tests and the browser journey.

An order whose payment_source is a vaulted PayPal wallet (`vault_id`, made with `vault()`)
is captured in the create call itself, as PayPal does for such one-step orders: the
answer is COMPLETED, with a capture that is COMPLETED, or DECLINED for a vault made with
`declines=True`. An unknown vault id is refused (422 INVALID_RESOURCE_ID).

PayPal-Request-Id makes create, capture and refund idempotent, as PayPal documents: a
repeat with the same id returns the first answer and does nothing more. Every request
is recorded, and `captures` counts the money actually moved.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.conftest import free_port


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakePayPal:
    port: int = field(default_factory=free_port)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    return_urls: dict[str, str] = field(default_factory=dict)
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    captures: int = 0
    refunds: list[int] = field(default_factory=list)
    vaults: dict[str, bool] = field(default_factory=dict)  # vault id -> declines

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakePayPal:
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
        self._lock = threading.Lock()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def posts(self, needle: str) -> list[Seen]:
        return [r for r in self.requests if r.method == "POST" and needle in r.path]

    def vault(self, *, declines: bool = False) -> str:
        """A saved PayPal wallet (what a buyer's earlier approval with vaulting leaves)."""
        vault_id = secrets.token_hex(4) + "-" + secrets.token_hex(2)
        self.vaults[vault_id] = declines
        return vault_id

    def approve(self, order_id: str) -> None:
        """What the buyer's Approve button does."""
        self.orders[order_id]["status"] = "APPROVED"

    # --- WSGI ----------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append(Seen(request.method, request.path, dict(request.headers)))
        with self._lock:
            response = self._route(request)
        return response(environ, start_response)

    def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/v1/oauth2/token":
            return _json(
                {
                    "access_token": "A21" + secrets.token_hex(8),
                    "token_type": "Bearer",
                    "expires_in": 32400,
                    "scope": "https://uri.paypal.com/services/payments",
                }
            )
        if path == "/checkoutnow" and method == "GET":
            return self._approval_page(request.args.get("token", ""))
        if path == "/checkoutnow" and method == "POST":
            return self._approved(request)
        key = request.headers.get("PayPal-Request-Id")
        if key and method == "POST" and key in self.replies:
            status, body = self.replies[key]
            return _json(body, status)
        status, body = self._api(request)
        if key and method == "POST" and status < 500:
            self.replies[key] = (status, body)
        return _json(body, status)

    def _api(self, request: Request) -> tuple[int, dict[str, Any]]:
        parts = request.path.strip("/").split("/")
        if parts[:3] == ["v2", "checkout", "orders"]:
            if len(parts) == 3 and request.method == "POST":
                return self._create(request.get_json(force=True))
            order = self.orders.get(parts[3]) if len(parts) > 3 else None
            if order is None:
                return 404, {
                    "name": "RESOURCE_NOT_FOUND",
                    "details": [{"issue": "INVALID_RESOURCE_ID"}],
                }
            if len(parts) == 5 and parts[4] == "capture":
                return self._capture(order)
            return 200, order
        if parts[:3] == ["v2", "payments", "captures"] and parts[-1] == "refund":
            amount = request.get_json(force=True)["amount"]["value"]
            self.refunds.append(round(float(amount) * 100))
            return 201, {
                "id": "REF" + secrets.token_hex(6).upper(),
                "status": "COMPLETED",
                "amount": {"value": amount},
            }
        return 404, {"name": "NOT_FOUND"}

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        vault_id = body["payment_source"]["paypal"].get("vault_id")
        if vault_id is not None:
            return self._create_vaulted(body, vault_id)
        order_id = secrets.token_hex(8).upper()
        context = body["payment_source"]["paypal"]["experience_context"]
        self.return_urls[order_id] = context["return_url"]
        self.orders[order_id] = {
            "id": order_id,
            "status": "PAYER_ACTION_REQUIRED",
            "intent": body["intent"],
            "purchase_units": [dict(body["purchase_units"][0])],
            "links": [
                {
                    "href": f"{self.url}/checkoutnow?token={order_id}",
                    "rel": "payer-action",
                    "method": "GET",
                },
                {
                    "href": f"{self.url}/v2/checkout/orders/{order_id}",
                    "rel": "self",
                    "method": "GET",
                },
            ],
        }
        return 200, self.orders[order_id]

    def _create_vaulted(self, body: dict[str, Any], vault_id: str) -> tuple[int, dict[str, Any]]:
        """A one-step order: the saved wallet is charged now, nobody approves."""
        if vault_id not in self.vaults:
            return 422, {
                "name": "UNPROCESSABLE_ENTITY",
                "details": [{"issue": "INVALID_RESOURCE_ID", "field": "vault_id"}],
            }
        order_id = secrets.token_hex(8).upper()
        unit = dict(body["purchase_units"][0])
        declined = self.vaults[vault_id]
        if not declined:
            self.captures += 1
        unit["payments"] = {
            "captures": [
                {
                    "id": "CAP" + secrets.token_hex(6).upper(),
                    "status": "DECLINED" if declined else "COMPLETED",
                    "amount": unit["amount"],
                }
            ]
        }
        self.orders[order_id] = {
            "id": order_id,
            "status": "COMPLETED",
            "intent": body["intent"],
            "payment_source": {"paypal": {"vault_id": vault_id}},
            "purchase_units": [unit],
            "links": [
                {
                    "href": f"{self.url}/v2/checkout/orders/{order_id}",
                    "rel": "self",
                    "method": "GET",
                }
            ],
        }
        return 201, self.orders[order_id]

    def _capture(self, order: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if order["status"] == "COMPLETED":
            return 422, {
                "name": "UNPROCESSABLE_ENTITY",
                "details": [{"issue": "ORDER_ALREADY_CAPTURED"}],
            }
        if order["status"] != "APPROVED":
            return 422, {
                "name": "UNPROCESSABLE_ENTITY",
                "details": [{"issue": "ORDER_NOT_APPROVED"}],
            }
        self.captures += 1
        unit = order["purchase_units"][0]
        unit["payments"] = {
            "captures": [
                {
                    "id": "CAP" + secrets.token_hex(6).upper(),
                    "status": "COMPLETED",
                    "amount": unit["amount"],
                }
            ]
        }
        order["status"] = "COMPLETED"
        return 201, order

    def _approval_page(self, order_id: str) -> Response:
        order = self.orders.get(order_id)
        if order is None:
            return Response("No such order", status=404)
        amount = order["purchase_units"][0]["amount"]
        page = f"""<!doctype html><html lang="en"><head><title>PayPal (fake): approve</title></head>
<body><h1>Pay with PayPal</h1><p>Order {html.escape(order_id)}:
{html.escape(amount["value"])} {html.escape(amount["currency_code"])}</p>
<form method="post" action="/checkoutnow">
<input type="hidden" name="token" value="{html.escape(order_id)}">
<button type="submit">Approve and pay</button></form></body></html>"""
        return Response(page, content_type="text/html")

    def _approved(self, request: Request) -> Response:
        order_id = parse_qs(request.get_data(as_text=True)).get("token", [""])[0]
        if order_id not in self.orders:
            return Response("No such order", status=404)
        self.approve(order_id)
        target = self.return_urls[order_id]
        sep = "&" if "?" in target else "?"
        return Response(
            status=303,
            headers={
                "Location": target + sep + urlencode({"token": order_id, "PayerID": "FAKEPAYER"})
            },
        )


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")
