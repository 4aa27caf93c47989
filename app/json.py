"""JSON parsing that turns every malformed body into a client error.

Flask's get_json(silent=True) only swallows ValueError; a deeply nested body
raises RecursionError instead and would surface as a 500.
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


class SafeJSONProvider(DefaultJSONProvider):
    """DefaultJSONProvider whose loads() reports excessive nesting as ValueError."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc
