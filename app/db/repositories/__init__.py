"""All SQL lives here: one module of plain async functions per table group.

Import the modules (``from app.db.repositories import users``) and call
``users.get(session, user_id)``. Repositories flush but never commit.
"""
