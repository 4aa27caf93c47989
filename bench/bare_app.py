"""The baseline for bench/tables.py: a bare Flask view returning a short string.

Served by gunicorn exactly like the app (same config file, sync workers, same
worker count): ``gunicorn -c gunicorn.conf.py bench.bare_app:app``.
"""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "ok"
