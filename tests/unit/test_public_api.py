"""Every module says what it exports, exports what it says, and the lists are pinned."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import mpo_realtime

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(mpo_realtime.__path__, "mpo_realtime.")
    if ".migrations" not in info.name and not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_module_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert not module.__file__ or module.__file__.endswith("__init__.py"), (
            f"{name} has no __all__"
        )
        return
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names {missing}, which it does not define"


#: Every module's ``__all__``, pinned: a name added, removed or renamed is a change of
#: interface, made on purpose here too (``None``: a package ``__init__`` with no list).
PINNED: dict[str, list[str] | None] = {
    "mpo_realtime": ["__version__"],
    "mpo_realtime.api": None,
    "mpo_realtime.api.app": ["create_app"],
    "mpo_realtime.api.body": ["read_body"],
    "mpo_realtime.api.coalesce": ["HOLD_LIMIT", "CoalescingTransport"],
    "mpo_realtime.api.deps": ["IngestClient", "ReportClient", "ServicesDep", "services_of"],
    "mpo_realtime.api.direct": ["DirectDispatch", "DirectHandler"],
    "mpo_realtime.api.edge": ["SLOW_SECONDS", "EdgeMiddleware", "refusal_recorder"],
    "mpo_realtime.api.errors": [
        "CLIENT_CLOSED",
        "STATUS",
        "OAuthProblem",
        "error_response",
        "install_error_handlers",
        "new_trace_id",
        "problem_json",
        "trace_id_of",
    ],
    "mpo_realtime.api.metrics": ["ACCESS_LOGGER", "METHODS", "UNMATCHED", "router"],
    "mpo_realtime.api.protocol": [
        "EdgeLimits",
        "EdgeHttpToolsProtocol",
        "Refusal",
        "check_uvicorn",
        "protocol_class",
    ],
    "mpo_realtime.api.routes": None,
    "mpo_realtime.api.routes.health": ["router"],
    "mpo_realtime.api.routes.ingest": ["router"],
    "mpo_realtime.api.routes.me": ["router"],
    "mpo_realtime.api.routes.oauth": ["FORM", "router"],
    "mpo_realtime.api.routes.reports": ["BASE", "direct_routes", "router", "warning_header"],
    "mpo_realtime.api.schemas": [
        "ERRORS_BY_OPERATION",
        "REPORT_REQUEST_SCHEMA",
        "ErrorEnvelope",
        "ExportStatus",
        "ExportStatusEnvelope",
        "IngestAnswer",
        "SECURITY_SCHEMES",
        "refine_openapi",
    ],
    "mpo_realtime.api.server": ["server_config", "server_options"],
    "mpo_realtime.client": [
        "ApiError",
        "AsyncReportClient",
        "AuthenticationError",
        "ClientError",
        "Credentials",
        "Expired",
        "ExportFailed",
        "ExportResult",
        "ExportStatus",
        "NotFound",
        "NotReady",
        "PermissionDenied",
        "PollPolicy",
        "Problem",
        "RateLimited",
        "ReportClient",
        "ReportOptions",
        "RetryPolicy",
        "Row",
        "ServerError",
        "Status",
        "StatusCallback",
        "TransportError",
        "ValidationError",
        "Value",
        "WaitTimeout",
    ],
    "mpo_realtime.client._async": ["AsyncReportClient"],
    "mpo_realtime.client._base": [
        "Action",
        "BaseReportClient",
        "Close",
        "Drain",
        "Flow",
        "ReadBody",
        "Send",
        "Sleep",
        "StatusCallback",
        "Token",
    ],
    "mpo_realtime.client._config": [
        "ENV_CLIENT_ID",
        "ENV_CLIENT_SECRET",
        "ENV_CONFIG",
        "ENV_URL",
        "Credentials",
        "PollPolicy",
        "RetryPolicy",
        "default_config_path",
        "read_config",
        "write_config",
    ],
    "mpo_realtime.client._errors": [
        "ApiError",
        "AuthenticationError",
        "ClientError",
        "ExportFailed",
        "Expired",
        "NotFound",
        "NotReady",
        "PermissionDenied",
        "Problem",
        "RateLimited",
        "ServerError",
        "TransportError",
        "ValidationError",
        "WaitTimeout",
        "error_from_response",
        "parse_retry_after",
    ],
    "mpo_realtime.client._files": [
        "AtomicFile",
        "IncompleteFile",
        "Receiver",
        "RowCounter",
        "format_of",
    ],
    "mpo_realtime.client._models": ["ExportStatus", "ReportOptions", "Status", "report_attributes"],
    "mpo_realtime.client._output": ["StatusLine", "deliver"],
    "mpo_realtime.client._result": ["ExportResult", "Row", "Value"],
    "mpo_realtime.client._sync": ["ReportClient"],
    "mpo_realtime.client.cli": ["app", "main"],
    "mpo_realtime.client.report_cli": ["Exit", "register", "report_app"],
    "mpo_realtime.client.traffic": ["send_events"],
    "mpo_realtime.console": [
        "CONSOLE_PATH",
        "CONTENT_SECURITY_POLICY",
        "SECURITY_HEADERS",
        "console_router",
    ],
    "mpo_realtime.console.assets": ["CHART_LIBRARY", "Asset", "Assets"],
    "mpo_realtime.console.routes": ["CONSOLE_PATH", "console_router", "render_page"],
    "mpo_realtime.console.security": ["CONTENT_SECURITY_POLICY", "SECURITY_HEADERS"],
    "mpo_realtime.demo": [
        "QUICK_START",
        "Backfill",
        "backfill",
        "hours",
        "ensure_demo_client",
        "live_traffic",
        "quick_start",
    ],
    "mpo_realtime.domain": None,
    "mpo_realtime.domain.buckets": ["Piece", "bucket_pieces", "offset_changes"],
    "mpo_realtime.domain.errors": [
        "CODE_INFO",
        "AuthenticationError",
        "ErrorCode",
        "ErrorType",
        "MpoError",
        "Problem",
        "ProblemError",
        "StoreError",
    ],
    "mpo_realtime.domain.events": [
        "EVENT_FIELDS",
        "MAX_COST",
        "MAX_COUNT",
        "MAX_ID",
        "MAX_TEXT",
        "EventBatch",
        "EventBatchError",
        "EventIssue",
        "parse_events",
    ],
    "mpo_realtime.domain.interval": [
        "LOOKBACK_MAX",
        "LOOKBACK_MIN",
        "Interval",
        "resolve_interval",
    ],
    "mpo_realtime.domain.jobs": [
        "Client",
        "Job",
        "JobStatus",
        "Role",
        "WriteScope",
        "describe_scope",
    ],
    "mpo_realtime.domain.money": ["COST_SCALE", "NANOS", "cost_nanos", "costs_nanos"],
    "mpo_realtime.domain.plan": ["ID_COLUMNS", "QueryPlan", "plan_for"],
    "mpo_realtime.domain.report": [
        "DEFAULT_DIMENSIONS",
        "LOOKBACK_MAX",
        "LOOKBACK_MIN",
        "DEFAULT_METRICS",
        "Dimension",
        "FileFormat",
        "Metric",
        "ReportSpec",
        "parse_report_request",
    ],
    "mpo_realtime.domain.zones": ["canonical_zone", "get_zone", "tzdata_version", "zone_names"],
    "mpo_realtime.exports": None,
    "mpo_realtime.exports.clients": [
        "ClientService",
        "IssuedToken",
        "TokenSigner",
        "generate_signing_key",
        "hash_secret",
        "verify_secret",
    ],
    "mpo_realtime.exports.files": ["LocalFileStore"],
    "mpo_realtime.exports.ingestion": ["IngestService"],
    "mpo_realtime.exports.jobqueries": [
        "PENDING",
        "claim_statement",
        "lease_free",
        "reused_job",
        "slot_live",
        "take_slot",
    ],
    "mpo_realtime.exports.jobstore": ["CLIENTS", "JOBS", "METADATA", "REUSE", "SqlJobStore"],
    "mpo_realtime.exports.jobtables": [
        "CLIENTS",
        "JOBS",
        "METADATA",
        "REUSE",
        "UtcDateTime",
        "client_row",
        "client_values",
        "job_row",
        "job_values",
    ],
    "mpo_realtime.exports.ratelimit": [
        "Clock",
        "Decision",
        "MemoryWindows",
        "RateLimited",
        "RateLimiter",
        "per_hour",
        "per_minute",
    ],
    "mpo_realtime.exports.runner": ["JobRunner", "LeaseLost", "failure_message", "runner_id"],
    "mpo_realtime.exports.service": [
        "WRITE_VISIBILITY_MARGIN",
        "Clock",
        "CreatedExport",
        "Download",
        "ExportService",
        "file_name_for",
        "utcnow",
    ],
    "mpo_realtime.exports.sweeper": ["SweepResult", "Sweeper"],
    "mpo_realtime.exports.writers": ["WriteResult", "write_export"],
    "mpo_realtime.logs": [
        "BufferedStreamHandler",
        "JsonFormatter",
        "LogFormat",
        "TextFormatter",
        "configure_logging",
        "flush_logs",
    ],
    "mpo_realtime.metrics": ["Metrics"],
    "mpo_realtime.pacing": ["TICK_SECONDS", "paced_counts"],
    "mpo_realtime.services": ["Services", "open_event_store"],
    "mpo_realtime.serving": ["PortUnavailable", "ServerProcess", "StopRequested", "bind", "run"],
    "mpo_realtime.settings": ["Settings"],
    "mpo_realtime.status": ["Sample", "StatusLine", "report_status"],
    "mpo_realtime.store": None,
    "mpo_realtime.store.base": [
        "COST_TYPE",
        "MAX_ROW_COST",
        "MAX_ROW_COUNT",
        "ROLLUP_SCHEMA",
        "Catalog",
        "EventStore",
        "IdempotencyConflict",
        "IngestReceipt",
        "IngestRequest",
        "cost_array",
    ],
    "mpo_realtime.store.duckdb_checks": ["conformed", "migrate", "refusal", "settle"],
    "mpo_realtime.store.duckdb_store": ["DuckDBEventStore"],
    "mpo_realtime.store.ingest": ["Ingestor", "batch_to_table"],
    "mpo_realtime.store.plan_sql": ["render_aggregate"],
    "mpo_realtime.store.simulator": [
        "EVENT_SCHEMA",
        "Advertiser",
        "Campaign",
        "Seller",
        "Simulator",
        "World",
    ],
    "mpo_realtime.store.sql": ["queries"],
}


def test_every_module_is_pinned() -> None:
    assert sorted(PINNED) == sorted(["mpo_realtime", *MODULES]), (
        "a module was added or removed: pin its __all__ in PINNED"
    )


@pytest.mark.parametrize("name", sorted(PINNED))
def test_module_all_is_pinned(name: str) -> None:
    assert getattr(importlib.import_module(name), "__all__", None) == PINNED[name]
