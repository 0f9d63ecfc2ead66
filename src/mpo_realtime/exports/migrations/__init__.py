"""Alembic migrations of the job store; run through ``SqlJobStore.migrate()``, no alembic.ini."""

from __future__ import annotations
