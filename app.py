"""Development entry point: `python app.py` serves the app with the reloader.

`import app` resolves to the package in app/, not this file, so `flask --app app`
and gunicorn's `app:create_app()` both reach the factory.
"""

import os

from app import create_app

if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), debug=True)
