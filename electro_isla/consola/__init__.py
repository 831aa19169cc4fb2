"""The operator console at /admin/: one page, its own assets, charts rendered by the app.

The page is public (it is only a login form until someone logs in); every
figure it shows comes from the staff-only API with the operator's bearer token.
"""
