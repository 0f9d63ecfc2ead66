"""Clients' scopes: which advertisers a client reads and writes, and how errors name them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mpo_realtime.domain.jobs import Client, Job, JobStatus, Role, WriteScope, describe_scope

CREATED = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _client(advertisers: tuple[int, ...], **options: object) -> Client:
    return Client(
        client_id="c1",
        name="test",
        secret_hash="x",
        advertiser_ids=advertisers,
        roles=frozenset({Role.REPORT, Role.INGEST}),
        created_at=CREATED,
        **options,  # type: ignore[arg-type]
    )


def test_client_is_active_until_revoked() -> None:
    assert _client((1,)).active
    assert not _client((1,), revoked_at=CREATED).active


def test_client_covers_only_subsets_of_its_scope() -> None:
    client = _client((101, 7, 9))
    assert client.covers([9, 7, 101])  # its whole scope
    assert client.covers([101, 7])
    assert client.covers((9, 9))
    assert client.covers([])
    assert not client.covers([101, 103])
    assert not _client(()).covers([1])


def test_client_write_scope_is_its_advertisers_unless_a_trusted_producer() -> None:
    assert _client((5, 3)).write_scope == WriteScope(frozenset({3, 5}))
    trusted = _client((5,), ingest_any_advertiser=True).write_scope
    assert trusted == WriteScope(any_advertiser=True)
    assert trusted.outside([1, 2]) == []
    assert trusted.describe() == "every advertiser"


def test_write_scope_outside_lists_the_missing_advertisers_ascending() -> None:
    scope = WriteScope(frozenset({3, 5}))
    assert scope.outside([9, 5, 1, 9, 3]) == [1, 9]
    assert scope.outside([3, 5]) == []
    assert WriteScope().outside([2]) == [2]


@pytest.mark.parametrize(
    ("advertisers", "words"),
    [
        ([], "no advertiser"),
        ([321], "advertiser 321"),
        ([321, 322], "advertisers 321, 322"),
        (list(range(1, 11)), "advertisers 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"),
        (list(range(1, 12)), "11 advertisers: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 1 more"),
        (
            list(range(1, 1_236)),
            "1,235 advertisers: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 1,225 more",
        ),
    ],
)
def test_describe_scope_names_ten_advertisers_and_counts_the_rest(
    advertisers: list[int], words: str
) -> None:
    assert describe_scope(advertisers) == words
    assert WriteScope(frozenset(advertisers)).describe() == words


def test_job_evolve_changes_only_the_fields_given() -> None:
    job = Job(
        id="j1",
        client_id="c1",
        advertiser_ids=(1,),
        cache_key="k",
        spec={},
        file_format="csv",
        created_at=CREATED,
    )
    done = job.evolve(status=JobStatus.DONE, row_count=3)
    assert (done.status, done.row_count, done.id, done.created_at) == (
        JobStatus.DONE,
        3,
        "j1",
        CREATED,
    )
    assert (job.status, job.row_count, job.attempts) == (JobStatus.PENDING, None, 0)
