"""Unbound extension objects; create_app binds them to an app."""

from __future__ import annotations

from flask_wtf.csrf import CSRFProtect

from app.core.database import Database

db = Database()
csrf = CSRFProtect()
