"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`, `flask --app wsgi ...`."""

from electro_isla import create_app

app = create_app()
