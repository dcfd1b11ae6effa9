"""Alembic migrations of the app's databases (the Task store, the outbox, sessions, launch
states, rate-limit buckets and re-read marks): ``unitguard db upgrade`` runs them, and ``serve``
refuses a database that is behind (``plugin.schema``)."""
