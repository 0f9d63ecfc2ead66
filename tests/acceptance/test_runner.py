"""The export runner's lease: renewed while it works, lost to another runner, and failures.

The runner's clock is the seam: each call is a moment the runner acts at (claim, renew,
finish), and a clock that lets another runner claim the job at one of those moments
interleaves the two deterministically, on the real job store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mpo_realtime.domain.jobs import Job, JobStatus
from mpo_realtime.exports.runner import JobRunner
from tests.acceptance.conftest import Api

SETTLED = {"advertiserIds": ["321"], "startDate": "2026-01-09", "endDate": "2026-01-10"}
START = datetime(2026, 11, 1, 12, tzinfo=UTC)


def _rows(api: Api) -> None:
    api.add_rows(
        [
            {
                "minute": datetime(2026, 1, 9, hour, tzinfo=UTC),
                "advertiser_id": 321,
                "campaign_id": 7,
                "clicks": 1,
                "displays": 2,
                "cost": 0.5,
            }
            for hour in range(24)
        ]
    )


def _runner(api: Api, clock: Callable[[], datetime], **options: Any) -> JobRunner:
    services = api.services
    return JobRunner(
        jobs=services.jobs, events=services.events, files=services.files, clock=clock, **options
    )


def _create(api: Api) -> str:
    created = api.create(SETTLED, api.token())
    assert created.status_code == 200, created.text
    return str(created.json()["exportId"])


def test_the_lease_is_renewed_while_the_job_runs(api: Api) -> None:
    _rows(api)
    export_id = _create(api)
    moments: list[datetime] = []
    leases: list[datetime | None] = []

    def clock() -> datetime:
        job = api.services.jobs.get_job(export_id)
        leases.append(job.lease_expires_at if job else None)
        moments.append(START + timedelta(minutes=len(moments)))
        return moments[-1]

    # a lease of 0: renewed at every batch, each time until the clock's moment
    runner = _runner(api, clock, lease=timedelta(0), owner="runner-a")
    done = runner.run_one()
    assert done is not None and done.status is JobStatus.DONE
    # claim, at least one renewal, then the finish
    assert len(moments) >= 3
    # when the runner finished, its lease ran until the last renewal's moment: renewed
    assert _utc(leases[-1]) == moments[-2]
    assert _utc(leases[1]) == moments[0]  # the claim's lease, before the first renewal


def _utc(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def _thief_at(api: Api, export_id: str, call: int) -> tuple[Callable[[], datetime], list[Job]]:
    """A clock under which another runner claims the job at the clock's ``call``-th call."""
    calls: list[datetime] = []
    stolen: list[Job] = []

    def clock() -> datetime:
        calls.append(START + timedelta(minutes=len(calls)))
        if len(calls) == call:
            job = api.services.jobs.claim_next(
                owner="runner-b", now=calls[-1] + timedelta(hours=1), lease=timedelta(hours=1)
            )
            assert job is not None and job.id == export_id
            stolen.append(job)
        return calls[-1]

    return clock, stolen


def test_a_runner_whose_lease_was_taken_stops_and_leaves_the_job(api: Api) -> None:
    _rows(api)
    export_id = _create(api)
    # call 1 claims; before the renewal at the first batch (call 2) runner B claims it
    clock, stolen = _thief_at(api, export_id, 2)
    runner = _runner(api, clock, lease=timedelta(0), owner="runner-a")
    job = runner.run_one()
    assert stolen, "the other runner never claimed the job"
    assert job is not None and job.status is JobStatus.PENDING
    assert job.lease_owner == "runner-b"  # still the new owner's, not failed, not Done
    assert not (api.services.files.root / f"{export_id}.csv").exists()
    # the new owner finishes it
    owner_b = _runner(api, lambda: START + timedelta(hours=2), owner="runner-b")
    owner_b.execute(stolen[0])
    finished = api.services.jobs.get_job(export_id)
    assert finished is not None and finished.status is JobStatus.DONE


def test_a_result_finished_after_the_lease_moved_on_is_discarded(api: Api) -> None:
    _rows(api)
    export_id = _create(api)
    finished: list[Job] = []
    # a long lease: the keeper never renews; call 2 is the last renewal before the file
    # is published, and B claims at the finish (call 3), once the file is in place
    clock, stolen = _thief_at(api, export_id, 3)
    runner = _runner(
        api, clock, lease=timedelta(hours=1), owner="runner-a", on_finished=finished.append
    )
    job = runner.run_one()
    assert stolen
    assert job is not None and (job.status, job.lease_owner) == (JobStatus.PENDING, "runner-b")
    assert finished == []  # not counted as finished
    # the file stays for B, which writes the same name: deleting it could delete B's


def test_a_runner_that_lost_its_job_before_publishing_leaves_no_file(api: Api) -> None:
    _rows(api)
    export_id = _create(api)
    # a long lease: the keeper never renews, so the export runs to its end; B claims
    # at the renewal made before the file is published (call 2)
    clock, stolen = _thief_at(api, export_id, 2)
    runner = _runner(api, clock, lease=timedelta(hours=1), owner="runner-a")
    job = runner.run_one()
    assert stolen
    assert job is not None and (job.status, job.lease_owner) == (JobStatus.PENDING, "runner-b")
    assert not api.services.files.exists(f"{export_id}.csv")
    assert [p.name for p in api.services.files.root.rglob("*") if p.is_file()] == []


def test_a_job_that_cannot_be_produced_fails_with_an_error_id(api: Api) -> None:
    export_id = _create(api)
    # a plan this version cannot read: the job can never be produced
    api.services.jobs.create_job(
        Job(
            id="0" * 8 + export_id[8:],
            client_id=api.services.jobs.get_job(export_id).client_id,  # type: ignore[union-attr]
            advertiser_ids=(321,),
            cache_key="broken",
            spec={"plan": {"not": "a plan"}},
            file_format="csv",
            created_at=datetime.now(UTC) - timedelta(hours=1),
        )
    )
    finished: list[Job] = []
    runner = _runner(api, lambda: datetime.now(UTC), on_finished=finished.append)
    failed = runner.run_one()
    assert failed is not None and failed.id.startswith("00000000")
    assert failed.status is JobStatus.FAILURE
    assert failed.message is not None
    assert failed.message.startswith("the export could not be produced; the operator can")
    assert [job.id for job in finished] == [failed.id]


def test_a_file_that_cannot_be_written_fails_the_job_saying_so(api: Api) -> None:
    export_id = _create(api)
    (api.services.files.root / f"{export_id}.csv").mkdir()
    api.run_jobs()
    failed = api.services.jobs.get_job(export_id)
    assert failed is not None and failed.status is JobStatus.FAILURE
    assert failed.message is not None
    assert failed.message.startswith("the export file could not be written; the operator")
