"""Criteo's official SDK against a real server: run by the SDK's own interpreter.

Not a test module: ``test_sdk.py`` runs it in the SDK's virtual environment with
``MPO_URL``, ``MPO_CLIENT_ID`` and ``MPO_CLIENT_SECRET`` set and the report's
advertiser, start and end as arguments, and reads the JSON it prints.
"""
# mypy: ignore-errors
# (the SDK is not installed where mypy runs: it lives in its own virtual environment)

from __future__ import annotations

import base64
import json
import os
import sys
import time

from criteo_api_marketingsolutions_preview import ApiClientBuilder
from criteo_api_marketingsolutions_preview.api.analytics_api import AnalyticsApi
from criteo_api_marketingsolutions_preview.exceptions import ApiException
from criteo_api_marketingsolutions_preview.model.real_time_product_report_job import (
    RealTimeProductReportJob,
)
from criteo_api_marketingsolutions_preview.model.real_time_product_report_job_request import (
    RealTimeProductReportJobRequest,
)
from criteo_api_marketingsolutions_preview.model.real_time_product_report_job_resource import (
    RealTimeProductReportJobResource,
)


def request(**attributes: object) -> RealTimeProductReportJobRequest:
    job = RealTimeProductReportJob(**attributes)
    resource = RealTimeProductReportJobResource(type="RealTimeProductReportJob", attributes=job)
    return RealTimeProductReportJobRequest(data=resource)


def export(api: AnalyticsApi, file_format: str, advertiser: str, start: str, end: str) -> dict:
    from datetime import datetime

    created = api.create_realtime_product_report(
        real_time_product_report_job_request=request(
            advertiser_ids=[advertiser],
            dimensions=["CampaignId", "Hour"],
            metrics=["Clicks", "Displays", "Cost"],
            start_date=datetime.fromisoformat(start),
            end_date=datetime.fromisoformat(end),
            timezone="Europe/Paris",
            file_format=file_format,
        )
    )
    export_id = created.data.attributes.export_id
    statuses = [created.data.attributes.status]
    deadline = time.monotonic() + 60
    while statuses[-1] == "Pending" and time.monotonic() < deadline:
        time.sleep(0.2)
        polled = api.get_marketplace_performance_outcomes_export_status(export_id)
        statuses.append(polled.data.attributes.status)
    answer = api.get_realtime_product(export_id, _preload_content=False)
    return {
        "exportId": export_id,
        "createdType": created.data.type,
        "statuses": statuses,
        "httpStatus": answer.status,
        "contentType": answer.headers.get("Content-Type"),
        "body": base64.b64encode(answer.data).decode(),
    }


def main() -> None:
    advertiser, start, end = sys.argv[1:4]
    client = ApiClientBuilder.WithClientCredentials(
        os.environ["MPO_CLIENT_ID"], os.environ["MPO_CLIENT_SECRET"], host=os.environ["MPO_URL"]
    )
    client.set_default_header("X-MPO-Envelope", "jsonapi")
    api = AnalyticsApi(client)
    result = {fmt: export(api, fmt, advertiser, start, end) for fmt in ("Csv", "Json")}
    try:
        api.create_realtime_product_report(
            real_time_product_report_job_request=request(
                advertiser_ids=[advertiser], lookback_window=30, file_format="Csv"
            )
        )
    except ApiException as exc:
        result["error"] = {"status": exc.status, "body": json.loads(exc.body)}
    print(json.dumps(result))


main()
