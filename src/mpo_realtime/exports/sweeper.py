"""Expiry and retention: the periodic clean-up of exports and old roll-up rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from mpo_realtime.exports.files import FileStore
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.exports.service import file_name_for
from mpo_realtime.store.base import EventStore

__all__ = ["SweepResult", "Sweeper"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepResult:
    expired: int
    rows_purged: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Sweeper:
    jobs: SqlJobStore
    events: EventStore
    files: FileStore
    retention: timedelta

    def sweep(self, now: datetime) -> SweepResult:
        """Expire Done jobs past their time, delete their files, purge old events."""
        expired = self.jobs.expire_due(now=now)
        for job in expired:
            self.files.delete(job.file_name or file_name_for(job))
        purged = self.events.purge(now - self.retention)
        if expired or purged:
            log.info("sweep: %d exports expired, %d roll-up rows purged", len(expired), purged)
        return SweepResult(len(expired), purged)
