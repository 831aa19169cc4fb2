"""What the test suite and the benchmarks share: private servers, gunicorn, seed data.

Neither `tests/` nor `bench/` imports the other; both import this package, which is
installed with the project (`pip install -e .`), so no script edits `sys.path`.

- `servers`: throwaway PostgreSQL, Redis, Redis Cluster and Sentinel processes.
- `databases`: a fresh migrated database on such a server.
- `trees`: a commit's code exported to a temp dir (removed on exit), and a database
  migrated and seeded by a given tree's own code (the base-beside-head benchmarks).
- `gunicorn`: the one gunicorn launcher (drills, live, console, benchmarks).
- `factories`: factory_boy factories and bearer headers.
- `live`, `consola`: seeding and clients for the live stream and the operator console.
"""
