# Electro Isla API: gunicorn on a slim Python image, as a non-root user.
# Migrations run in a separate one-shot container (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home app

# Dependency layer: rebuilt only when pyproject.toml changes, not on every code edit.
# The runtime dependencies are read from pyproject.toml so the two cannot drift.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code runs from /app (wsgi.py, migrations/, gunicorn.conf.py), not installed.
COPY --chown=app:app . .
RUN mkdir -p /app/logs /app/instance && chown app:app /app/logs /app/instance

USER app

EXPOSE 8000

CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
