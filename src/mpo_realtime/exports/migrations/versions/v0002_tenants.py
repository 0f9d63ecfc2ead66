"""Tenants: trusted ingest producers, one reuse slot per cache key, fair claims.

- ``api_clients.ingest_any_advertiser``: a client whose ingest may write events of every
  advertiser (false for every existing client: scope applies to ingest from now on).
- ``export_reuse``: the export that identical requests reuse, one row per cache key,
  taken with one atomic upsert so that concurrent identical creates make one export.
  Filled from the newest reusable job of each key, so reuse carries on over the upgrade.
- Indexes for the fair claim order (a client's running jobs and latest start).

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-16
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _moment(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column(
        "api_clients",
        sa.Column("ingest_any_advertiser", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "export_reuse",
        sa.Column("cache_key", sa.String(128), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        _moment("created_at", nullable=False),
        _moment("reusable_until", nullable=True),
        _moment("expires_at", nullable=True),
    )
    op.create_index("ix_export_reuse_job_id", "export_reuse", ["job_id"])
    op.create_index(
        "ix_export_jobs_client_id_status_created_at",
        "export_jobs",
        ["client_id", "status", "created_at"],
    )
    op.create_index(
        "ix_export_jobs_client_id_started_at", "export_jobs", ["client_id", "started_at"]
    )
    # The newest Pending or Done job of each cache key becomes its slot.
    op.execute(
        """
        INSERT INTO export_reuse (cache_key, job_id, created_at, reusable_until, expires_at)
        SELECT j.cache_key, j.id, j.created_at, j.reusable_until, j.expires_at
        FROM export_jobs j
        WHERE j.status IN ('Pending', 'Done')
          AND NOT EXISTS (
            SELECT 1 FROM export_jobs k
            WHERE k.cache_key = j.cache_key
              AND k.status IN ('Pending', 'Done')
              AND (k.created_at > j.created_at OR (k.created_at = j.created_at AND k.id > j.id))
          )
        """
    )


def downgrade() -> None:
    op.drop_index("ix_export_jobs_client_id_started_at", table_name="export_jobs")
    op.drop_index("ix_export_jobs_client_id_status_created_at", table_name="export_jobs")
    op.drop_index("ix_export_reuse_job_id", table_name="export_reuse")
    op.drop_table("export_reuse")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("ingest_any_advertiser")
