"""Alembic revisions of the job store schema, oldest first."""

from __future__ import annotations
