"""A herd of polls of unfinished jobs: one read per batch, each poll answered as alone.

The scale-out parts (PostgreSQL jobs, Redis budgets) under the real app. A connection of
the test's own takes the jobs table's lock, so that one poll's read waits in PostgreSQL
while the herd gathers behind it (``api/batcher.py``); releasing the lock lets the herd
be read in one batch. Which poll lands in which batch is decided by the test, not by
timing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from mpo_realtime.api.batcher import Batcher
from tests.acceptance.conftest import STATS, Api
from tests.conftest import fresh_postgres_database

A, B = 321, 654


def _spec(advertiser: int, lookback: int) -> dict[str, Any]:
    return {
        "advertiserIds": [str(advertiser)],
        "dimensions": ["advertiserId"],
        "lookbackWindow": lookback,
    }


@pytest.fixture
def scale_out(
    api_factory: Callable[..., Api], postgres_admin_url: str, redis_url: str
) -> Iterator[tuple[Api, str]]:
    """The app on PostgreSQL and Redis, and its job store's URL for psycopg."""
    with fresh_postgres_database(postgres_admin_url) as url:
        api = api_factory(
            job_store_url=url,
            rate_limit_storage_url=redis_url,
            rate_limit_namespace=f"mpo-test-{uuid.uuid4().hex}",
            report_requests_per_minute=100_000,
        )
        yield api, url.replace("postgresql+psycopg://", "postgresql://", 1)
        api.services.jobs.close()  # before the database is dropped


def _pending(api: Api, headers: dict[str, str], advertiser: int, count: int) -> list[str]:
    ids = []
    for index in range(count):
        created = api.create(_spec(advertiser, 100 + index), headers)
        assert created.status_code == 200, created.text
        assert created.json()["status"] == "Pending"  # runners are off
        ids.append(created.json()["exportId"])
    return ids


def _job_reads(api: Api) -> Batcher[str, Any]:
    batcher: Batcher[str, Any] = api.http.app.state.job_reads  # type: ignore[attr-defined]
    return batcher


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):  # a hang guard, not a measure
        while not condition():
            await asyncio.sleep(0)


async def _herd_behind_a_held_read(
    api: Api,
    database: str,
    blocker: Callable[[], Coroutine[Any, Any, httpx.Response]],
    herd: list[Callable[[], Coroutine[Any, Any, httpx.Response]]],
    gathered: int,
) -> tuple[httpx.Response, list[httpx.Response]]:
    """``blocker``'s read held by the table lock while ``herd`` gathers behind it."""
    batcher = _job_reads(api)
    with psycopg.connect(database) as holder:
        holder.execute("LOCK TABLE export_jobs IN ACCESS EXCLUSIVE MODE")
        try:
            first = asyncio.create_task(blocker())
            await _until(lambda: batcher.in_flight)
            tasks = [asyncio.create_task(poll()) for poll in herd]
            await _until(lambda: batcher.waiting == gathered)
            assert not first.done()
        finally:
            holder.rollback()
    return await first, await asyncio.gather(*tasks)


def _poller(
    http: httpx.AsyncClient, export_id: str, headers: dict[str, str]
) -> Callable[[], Coroutine[Any, Any, httpx.Response]]:
    return lambda: http.get(f"{STATS}/report-jobs/{export_id}", headers=headers)


def test_a_herd_of_two_clients_polls_is_read_at_once_each_answered_as_alone(
    scale_out: tuple[Api, str],
) -> None:
    api, database = scale_out
    headers = {A: api.token([A]), B: api.token([B])}
    jobs = {A: _pending(api, headers[A], A, 3), B: _pending(api, headers[B], B, 3)}
    unknown = str(uuid.uuid4())
    # the answers of today's lone polls, with a trace id of ours (it is in the body)
    strangers = {
        "other client's": (jobs[A][1], headers[B]),
        "unknown": (unknown, headers[A]),
        "malformed": ("not-an-id", headers[B]),
    }
    alone: dict[str, Any] = {}
    for name, (export_id, auth) in strangers.items():
        alone[name] = api.http.get(
            f"{STATS}/report-jobs/{export_id}", headers={**auth, "X-Trace-Id": f"t{len(alone)}"}
        )
    assert {answer.status_code for answer in alone.values()} == {403}
    assert {answer.json()["errors"][0]["code"] for answer in alone.values()} == {"export-not-found"}

    async def scenario() -> tuple[httpx.Response, list[httpx.Response]]:
        transport = httpx.ASGITransport(app=api.http.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mpo.test") as http:
            herd = [
                _poller(http, jobs[owner][index % 3], headers[owner])
                for index in range(40)
                for owner in (A, B)
            ]
            for index, (export_id, auth) in enumerate(strangers.values()):
                herd.append(_poller(http, export_id, {**auth, "X-Trace-Id": f"t{index}"}))
            blocker = _poller(http, jobs[A][0], headers[A])
            # the malformed id is refused before any read: it does not wait
            return await _herd_behind_a_held_read(api, database, blocker, herd, len(herd) - 1)

    first, answers = asyncio.run(scenario())

    assert first.status_code == 200, first.text
    assert first.json()["exportId"] == jobs[A][0]
    polls, others = answers[:80], answers[80:]
    for index, answer in enumerate(polls):
        owner = (A, B)[index % 2]
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "exportId": jobs[owner][index // 2 % 3],
            "status": "Pending",
            "message": None,
        }
    for (name, lone), answer in zip(alone.items(), others, strict=True):
        assert answer.status_code == lone.status_code, name
        assert answer.content == lone.content, name  # byte for byte
        assert answer.headers["content-type"] == lone.headers["content-type"]


def test_a_job_finished_between_two_batches_is_seen_finished(
    scale_out: tuple[Api, str],
) -> None:
    api, database = scale_out
    headers = api.token([A])
    blocking, watched = _pending(api, headers, A, 2)
    assert api.poll(watched, headers).json()["status"] == "Pending"

    async def batch() -> httpx.Response:
        transport = httpx.ASGITransport(app=api.http.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mpo.test") as http:
            _, (answer,) = await _herd_behind_a_held_read(
                api,
                database,
                _poller(http, blocking, headers),
                [_poller(http, watched, headers)],
                1,
            )
            return answer

    before = asyncio.run(batch())
    assert api.run_jobs() == 2
    after = asyncio.run(batch())

    assert before.json()["status"] == "Pending"
    assert after.json()["status"] == "Done"
    assert api.poll(watched, headers).json()["status"] == "Done"  # now from memory


def test_a_failing_read_fails_its_batch_only_and_the_next_batch_reads(
    scale_out: tuple[Api, str],
) -> None:
    """Reads ended by PostgreSQL (their sessions terminated) fail only their polls.

    The lock is held throughout: the lone poll's read waits, then the first herd's, each
    terminated in turn; the second herd's read waits until the lock is released.
    """
    api, database = scale_out
    headers = api.token([A])
    ids = _pending(api, headers, A, 3)
    assert api.poll(ids[0], headers).status_code == 200
    batcher = _job_reads(api)

    def waiting_reads(holder: psycopg.Connection[Any]) -> list[int]:
        # the statistics views are read once per transaction unless told otherwise
        holder.execute("SELECT pg_stat_clear_snapshot()")
        rows = holder.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchall()
        return [row[0] for row in rows]

    ended: set[int] = set()

    async def until_read_waits(holder: psycopg.Connection[Any]) -> int:
        """The session of the one read waiting for the lock (not one terminated)."""
        pids: list[int] = []

        def waits() -> bool:
            pids[:] = set(waiting_reads(holder)) - ended
            return len(pids) == 1

        await _until(waits)
        return pids[0]

    def terminate(holder: psycopg.Connection[Any], pid: int) -> None:
        holder.execute("SELECT pg_terminate_backend(%s)", [pid])
        ended.add(pid)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=api.http.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mpo.test") as http:
            with psycopg.connect(database) as holder:
                holder.execute("LOCK TABLE export_jobs IN ACCESS EXCLUSIVE MODE")
                try:
                    lone = asyncio.create_task(_poller(http, ids[0], headers)())
                    lone_read = await until_read_waits(holder)
                    first = [asyncio.create_task(_poller(http, i, headers)()) for i in ids]
                    await _until(lambda: batcher.waiting == 3)
                    terminate(holder, lone_read)
                    first_read = await until_read_waits(holder)  # the first herd's
                    second = [asyncio.create_task(_poller(http, i, headers)()) for i in ids]
                    await _until(lambda: batcher.waiting == 3)
                    terminate(holder, first_read)
                    await until_read_waits(holder)  # the second herd's
                finally:
                    holder.rollback()
            return [await lone, *await asyncio.gather(*first), *await asyncio.gather(*second)]

    answers = asyncio.run(scenario())

    failed, read = answers[:4], answers[4:]
    assert [answer.status_code for answer in failed] == [503] * 4
    # the lone poll's failure (as before batches) and its herd's are one answer
    for answer in failed:
        problem = answer.json()["errors"][0]
        assert problem["code"] == "service-unavailable"
        assert problem["detail"] == "a backing store is unavailable; retry"
        assert answer.headers["retry-after"] == "5"
    assert [answer.json()["exportId"] for answer in read] == ids
    assert {answer.json()["status"] for answer in read} == {"Pending"}


def test_a_herd_of_polls_spends_a_shared_budget_exactly(
    api_factory: Callable[..., Api], redis_url: str
) -> None:
    """Concurrent hits on Redis, batched, count as one by one: 10 pass, 5 are refused."""
    api = api_factory(
        rate_limit_storage_url=redis_url,
        rate_limit_namespace=f"mpo-test-{uuid.uuid4().hex}",
        report_requests_per_minute=10,
    )
    headers = api.token()
    poll = f"{STATS}/report-jobs/{uuid.uuid4()}"

    async def herd() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=api.http.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mpo.test") as http:
            return await asyncio.gather(*(http.get(poll, headers=headers) for _ in range(15)))

    answers = asyncio.run(herd())

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [403] * 10 + [429] * 5  # the id is unknown: spent, then not found
    remaining = sorted(
        int(answer.headers["x-ratelimit-remaining"])
        for answer in answers
        if answer.status_code == 403
    )
    assert remaining == list(range(10))
    refused = [answer for answer in answers if answer.status_code == 429]
    assert {answer.headers["x-ratelimit-remaining"] for answer in refused} == {"0"}
