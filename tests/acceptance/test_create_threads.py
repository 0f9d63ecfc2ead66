"""Creates run under a thread budget of their own: polls never queue behind them.

A create may wait for the job store (here: SQLite's one writer lock, held by another
connection). Under the worker-thread limit that every ``run_in_threadpool`` call shares
(AnyIO's 40), a burst of such creates took every thread and a poll of a Pending job
waited behind them; ``routes/reports.py`` gives creates ``CREATE_THREADS`` of their own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import anyio
import httpx

from mpo_realtime.api.routes.reports import CREATE_THREADS
from tests.acceptance.conftest import STATS, Api

RELATIVE = {"advertiserIds": ["321"], "dimensions": ["advertiserId"], "lookbackWindow": 180}
#: AnyIO's default number of worker threads, which polls and token checks share
DEFAULT_THREADS = 40


def test_a_pending_poll_is_answered_while_creates_wait_for_the_job_store(api: Api) -> None:
    headers = api.token()
    created = api.create(RELATIVE, headers)  # runners are off: it stays Pending
    assert created.status_code == 200, created.text
    export_id = created.json()["exportId"]
    # more creates than there are shared worker threads, each of a new export
    creates = DEFAULT_THREADS + CREATE_THREADS
    bodies = [
        {"data": {"attributes": {**RELATIVE, "lookbackWindow": 200 + index}}}
        for index in range(creates)
    ]
    # Another connection takes the job store's write lock: every new export waits for it.
    holder = sqlite3.connect(api.services.settings.data_dir / "jobs.sqlite3", isolation_level=None)

    async def scenario() -> tuple[Any, int, list[Any]]:
        transport = httpx.ASGITransport(app=api.http.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mpo.test") as http:
            holder.execute("BEGIN IMMEDIATE")
            try:
                tasks = [
                    asyncio.create_task(
                        http.post(f"{STATS}/realtime-reports/export", json=body, headers=headers)
                    )
                    for body in bodies
                ]
                # every create now waits: for a worker thread, or in one for the lock
                await anyio.wait_all_tasks_blocked()
                async with asyncio.timeout(20):
                    poll = await http.get(f"{STATS}/report-jobs/{export_id}", headers=headers)
                still_waiting = sum(not task.done() for task in tasks)
            finally:
                holder.execute("ROLLBACK")
            answers = await asyncio.gather(*tasks)
        return poll, still_waiting, answers

    try:
        poll, still_waiting, answers = asyncio.run(scenario())
    finally:
        holder.close()

    assert poll.status_code == 200, poll.text
    assert poll.json()["status"] == "Pending"
    assert still_waiting == creates  # answered while every create was still held up
    assert [answer.status_code for answer in answers] == [200] * creates
    assert {answer.headers["x-mpo-reused"] for answer in answers} == {"false"}
    assert len({answer.json()["exportId"] for answer in answers} | {export_id}) == creates + 1
