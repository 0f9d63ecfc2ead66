"""The client's pure parts: row counting, policies, error reading, typing, files, config."""

from __future__ import annotations

import csv
import io
import random
import stat
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpo_realtime.client import (
    ApiError,
    AuthenticationError,
    Expired,
    ExportFailed,
    ExportResult,
    NotFound,
    NotReady,
    PermissionDenied,
    PollPolicy,
    RateLimited,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationError,
    WaitTimeout,
)
from mpo_realtime.client._config import read_config, write_config
from mpo_realtime.client._errors import error_from_response, parse_retry_after
from mpo_realtime.client._files import AtomicFile, IncompleteFile, RowCounter
from mpo_realtime.client._models import report_attributes
from mpo_realtime.client.report_cli import Exit, _exit_of

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(
    rows=st.lists(st.tuples(st.integers(0, 10**12), text), max_size=30),
    cuts=st.lists(st.integers(0, 10**6), max_size=8),
)
def test_row_counter_counts_csv_records_across_any_chunking(
    rows: list[tuple[int, str]], cuts: list[int]
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(["campaignId", "productId"])
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    counter = RowCounter("csv")
    for chunk in _chunks(data, cuts):
        counter.feed(chunk)
    assert counter.rows() == len(rows) == len(list(csv.reader(io.StringIO(data.decode())))) - 1


def test_row_counter_refuses_files_cut_short() -> None:
    for data in (b'"a","b"\n1,"x\n', b'"a","b"\n1,2', b'{"columns":["a"],"data":[[1]],"ro'):
        counter = RowCounter("json" if data.startswith(b"{") else "csv")
        counter.feed(data)
        with pytest.raises(IncompleteFile):
            counter.rows()
    whole = RowCounter("json")
    for part in (b'{"columns":["a"],"data":[[1],[2]],', b'"rows":2}'):
        whole.feed(part)
    assert whole.rows() == 2
    assert RowCounter("parquet").rows() is None


def test_poll_policy_grows_to_its_maximum() -> None:
    delays = PollPolicy(first=0.1, factor=2, maximum=1).delays()
    assert [round(next(delays), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1, 1]
    with pytest.raises(ValueError):
        PollPolicy(first=0)


def test_retry_policy_waits_retry_after_with_jitter_and_backs_off() -> None:
    policy, rng = (
        RetryPolicy(attempts=4, backoff=1, maximum_backoff=3, max_retry_after=60),
        random.Random(1),
    )
    for _ in range(200):
        waited = policy.delay(1, 10, rng)
        assert waited is not None and 10 <= waited <= 11
        backoff = [policy.delay(attempt, None, rng) for attempt in (1, 2, 3)]
        assert [
            b is not None and c / 2 <= b <= c for b, c in zip(backoff, (1, 2, 3), strict=True)
        ] == [True] * 3
    assert policy.delay(4, None, rng) is None  # attempts spent
    assert policy.delay(1, 61, rng) is None  # longer than the caller will wait


def test_parse_retry_after_reads_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = parse_retry_after(later)
    assert seconds is not None and 25 <= seconds <= 30


def _answer(status: int, body: bytes, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "http://mpo.test/x")
    return httpx.Response(status, content=body, headers=headers, request=request)


def test_error_from_response_reads_the_envelope_oauth_and_foreign_pages() -> None:
    envelope = (
        b'{"warnings":[],"errors":[{"traceId":"t1","type":"validation","code":"invalid-query",'
        b'"title":"Invalid query definition","detail":"bad id","source":{"pointer":"/data/x"}},'
        b'{"traceId":"t1","type":"validation","code":"invalid-time-interval","title":"T","detail":"d"}]}'
    )
    error = error_from_response(_answer(400, envelope, **{"x-trace-id": "t1"}))
    assert isinstance(error, ValidationError)
    assert (error.code, error.detail, error.trace_id, len(error.errors)) == (
        "invalid-query",
        "bad id",
        "t1",
        2,
    )
    assert error.errors[0].pointer == "/data/x" and "(and 1 more)" in str(error)
    oauth = error_from_response(
        _answer(401, b'{"error":"invalid_client","error_description":"no"}')
    )
    assert isinstance(oauth, AuthenticationError) and (oauth.code, oauth.detail) == (
        "invalid_client",
        "no",
    )
    page = error_from_response(_answer(502, b"<html>bad gateway</html>", **{"retry-after": "3"}))
    assert isinstance(page, ServerError) and page.code is None and page.retry_after == 3
    assert "bad gateway" in page.detail


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (403, "export-not-found", NotFound),
        (403, "insufficient-accountpermissions", PermissionDenied),
        (410, "export-alreadyexpired", Expired),
        (409, "export-failed", ExportFailed),
        (409, "export-not-ready", NotReady),
        (409, "invalid-dimensioncombination", ValidationError),
        (429, "too-many-requests", RateLimited),
        (503, "service-unavailable", ServerError),
        (404, "version-not-found", NotFound),
        (405, "method-not-allowed", ApiError),
    ],
)
def test_error_from_response_picks_the_type_by_code_then_status(
    status: int, code: str, kind: type[ApiError]
) -> None:
    body = f'{{"errors":[{{"code":"{code}","detail":"d","traceId":"t"}}]}}'.encode()
    error = error_from_response(_answer(status, body))
    assert type(error) is kind and error.status_code == status and error.trace_id == "t"


def _api(kind: type[ApiError]) -> ApiError:
    return kind(status_code=400, errors=())


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (_api(ValidationError), Exit.INVALID),
        (_api(AuthenticationError), Exit.AUTHENTICATION),
        (_api(PermissionDenied), Exit.PERMISSION),
        (_api(NotFound), Exit.NOT_FOUND),
        (_api(Expired), Exit.EXPIRED),
        (_api(ExportFailed), Exit.FAILED),
        (_api(RateLimited), Exit.RATE_LIMITED),
        (_api(ServerError), Exit.UNAVAILABLE),
        (TransportError("down"), Exit.UNAVAILABLE),
        (_api(NotReady), Exit.PENDING),
        (WaitTimeout("id", 1.0), Exit.PENDING),
        (_api(ApiError), Exit.ERROR),
    ],
)
def test_report_cli_exit_code_of_each_error(error: Exception, exit_code: Exit) -> None:
    assert _exit_of(error) is exit_code
    assert len({int(code) for code in Exit}) == len(Exit)


def test_report_attributes_spell_the_api() -> None:
    naive = datetime(2026, 1, 9, 8, 0)
    paris = datetime(2026, 1, 9, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    assert report_attributes(advertiser_ids=[321, "322"], start=naive, end=paris) == {
        "fileFormat": "csv",
        "advertiserIds": ["321", "322"],
        "startDate": "2026-01-09T08:00:00Z",
        "endDate": "2026-01-09T09:00:00+01:00",
    }
    assert report_attributes(advertiser_ids="321", campaign_ids=[7], file_format="json") == {
        "fileFormat": "json",
        "advertiserIds": ["321"],
        "campaignIds": ["7"],
        "lookbackWindow": 60,
    }


def test_export_result_types_json_values_like_csv_ones() -> None:
    data = (
        b'{"columns":["productId","day","clicks","cost"],"data":[["7","2026-03-29T00:00:00+01:00",'
        b'3,5],["x","2026-03-30T00:00:00+02:00",0,1e-7]],"rows":2}'
    )
    result = ExportResult("id", "json", "application/json", 2, len(data), _content=data)
    rows = result.rows()
    assert rows[0] == {
        "productId": "7",
        "day": datetime(2026, 3, 29, tzinfo=timezone(timedelta(hours=1))),
        "clicks": 3,
        "cost": Decimal(5),
    }
    assert rows[1]["cost"] == Decimal("1E-7") and isinstance(rows[1]["cost"], Decimal)
    as_csv = b'"productId","day","clicks","cost"\n"7","2026-03-29T00:00:00+01:00",3,5\n'
    csv_result = ExportResult("id", "csv", "text/csv", 1, len(as_csv), _content=as_csv)
    assert csv_result.rows() == rows[:1]


def test_atomic_file_is_whole_or_absent(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    half = AtomicFile(target)
    half.write(b"new, half")
    half.discard()
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    whole = AtomicFile(target)
    whole.write(b"new")
    whole.commit()
    whole.discard()  # after commit: nothing to undo
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_config_file_round_trips_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "config.toml"
    values = {"url": "http://h:1", "client_id": "id", "client_secret": 'a"b\\c€\n'}
    write_config(path, values)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_config(path) == values
    assert read_config(tmp_path / "absent.toml") == {}
