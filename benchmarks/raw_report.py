"""One report by hand-written HTTP calls: the reference ``bench_report.py`` compares with.

Token, create, poll every 10 ms until Done (no back-off, ``Retry-After`` ignored: the
fastest a caller can be, and more than the API's document allows), download to a file.
``MPO_URL``, ``MPO_CLIENT_ID`` and ``MPO_CLIENT_SECRET`` say where and who.

    python benchmarks/raw_report.py ADVERTISER LOOKBACK_MINUTES OUT_FILE
"""

from __future__ import annotations

import os
import sys
import time

import httpx

STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"


def raw_report(http: httpx.Client, token: str, advertiser: str, lookback: int) -> bytes:
    """Create, poll and download with an existing token; the file's bytes."""
    auth = {"Authorization": f"Bearer {token}"}
    attributes = {
        "advertiserIds": [advertiser],
        "dimensions": ["campaignId", "hour"],
        "lookbackWindow": lookback,
    }
    body = {"data": {"type": "RealTimeProductReportJob", "attributes": attributes}}
    created = http.post(f"{STATS}/realtime-reports/export", json=body, headers=auth)
    created.raise_for_status()
    export_id, status = created.json()["exportId"], created.json()["status"]
    while status == "Pending":
        time.sleep(0.01)
        polled = http.get(f"{STATS}/report-jobs/{export_id}", headers=auth)
        polled.raise_for_status()
        status = polled.json()["status"]
    if status != "Done":
        raise SystemExit(f"export {export_id} ended {status}")
    answer = http.get(f"{STATS}/realtime-reports/{export_id}", headers=auth)
    answer.raise_for_status()
    return answer.content


def token_of(http: httpx.Client, client_id: str, client_secret: str) -> str:
    answer = http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        },
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def main() -> None:
    advertiser, lookback, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with httpx.Client(base_url=os.environ["MPO_URL"], timeout=30) as http:
        token = token_of(http, os.environ["MPO_CLIENT_ID"], os.environ["MPO_CLIENT_SECRET"])
        content = raw_report(http, token, advertiser, lookback)
    with open(out, "wb") as file:
        file.write(content)


if __name__ == "__main__":
    main()
