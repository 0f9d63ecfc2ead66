"""Initial schema: export jobs and API clients.

Revision ID: 0001
Revises:
Create Date: 2026-05-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _moment(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("advertiser_ids", sa.Text(), nullable=False),
        sa.Column("cache_key", sa.String(128), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("file_format", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        _moment("created_at", nullable=False),
        _moment("reusable_until", nullable=True),
        _moment("started_at", nullable=True),
        _moment("finished_at", nullable=True),
        _moment("expires_at", nullable=True),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        _moment("lease_expires_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("byte_size", sa.BigInteger(), nullable=True),
        sa.Column("file_name", sa.String(255), nullable=True),
        sa.Column("query_seconds", sa.Float(), nullable=True),
        sa.Column("write_seconds", sa.Float(), nullable=True),
    )
    op.create_index("ix_export_jobs_status_created_at", "export_jobs", ["status", "created_at"])
    op.create_index("ix_export_jobs_cache_key", "export_jobs", ["cache_key"])
    op.create_index("ix_export_jobs_lease_expires_at", "export_jobs", ["lease_expires_at"])
    op.create_index(
        "ix_export_jobs_client_id_created_at", "export_jobs", ["client_id", "created_at"]
    )
    op.create_table(
        "api_clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("advertiser_ids", sa.Text(), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        _moment("created_at", nullable=False),
        _moment("revoked_at", nullable=True),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("exports_per_hour", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_clients")
    op.drop_index("ix_export_jobs_client_id_created_at", table_name="export_jobs")
    op.drop_index("ix_export_jobs_lease_expires_at", table_name="export_jobs")
    op.drop_index("ix_export_jobs_cache_key", table_name="export_jobs")
    op.drop_index("ix_export_jobs_status_created_at", table_name="export_jobs")
    op.drop_table("export_jobs")
