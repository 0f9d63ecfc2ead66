"""Query plans: what an event store must compute for a report, independent of SQL dialect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mpo_realtime.domain.buckets import Piece, bucket_pieces
from mpo_realtime.domain.report import Dimension, Metric, ReportSpec

__all__ = ["ID_COLUMNS", "QueryPlan", "plan_for"]

#: roll-up column of each entity dimension
ID_COLUMNS: dict[Dimension, str] = {
    Dimension.ADVERTISER_ID: "advertiser_id",
    Dimension.PARTNER_ID: "partner_id",
    Dimension.CAMPAIGN_ID: "campaign_id",
    Dimension.SELLER_ID: "seller_id",
    Dimension.PRODUCT_ID: "product_id",
}


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """Sum metrics over ``[start, end)`` grouped by ``dimensions``, rows in dimension order.

    Time dimensions are bucket starts as UTC instants, cut in ``timezone`` as
    :mod:`mpo_realtime.domain.buckets` decides (an engine renders its
    :func:`~mpo_realtime.domain.buckets.bucket_pieces`, never its own zone rules): a
    repeated local hour (DST fall-back) gives two buckets. Rows whose metrics are all
    zero are dropped. Output column names are the canonical API names.
    """

    start: datetime
    end: datetime
    advertiser_ids: tuple[int, ...]
    campaign_ids: tuple[int, ...] = ()
    seller_ids: tuple[int, ...] = ()
    partner_ids: tuple[int, ...] = ()
    dimensions: tuple[Dimension, ...] = (Dimension.ADVERTISER_ID,)
    metrics: tuple[Metric, ...] = (Metric.CLICKS, Metric.DISPLAYS, Metric.COST)
    timezone: str = "UTC"

    @property
    def filters(self) -> dict[str, tuple[int, ...]]:
        """Roll-up column -> accepted IDs; an empty tuple means no filter."""
        return {
            "advertiser_id": self.advertiser_ids,
            "campaign_id": self.campaign_ids,
            "seller_id": self.seller_ids,
            "partner_id": self.partner_ids,
        }

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(d.value for d in self.dimensions) + tuple(m.value for m in self.metrics)

    def buckets(self, dimension: Dimension) -> tuple[Piece, ...]:
        """Where the ``dimension`` bucket of each minute of ``[start, end)`` starts."""
        return bucket_pieces(self.timezone, dimension, self.start, self.end)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "advertiserIds": list(self.advertiser_ids),
            "campaignIds": list(self.campaign_ids),
            "sellerIds": list(self.seller_ids),
            "partnerIds": list(self.partner_ids),
            "dimensions": [d.value for d in self.dimensions],
            "metrics": [m.value for m in self.metrics],
            "timezone": self.timezone,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueryPlan:
        return cls(
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            advertiser_ids=tuple(data["advertiserIds"]),
            campaign_ids=tuple(data["campaignIds"]),
            seller_ids=tuple(data["sellerIds"]),
            partner_ids=tuple(data["partnerIds"]),
            dimensions=tuple(Dimension(d) for d in data["dimensions"]),
            metrics=tuple(Metric(m) for m in data["metrics"]),
            timezone=data["timezone"],
        )


def plan_for(spec: ReportSpec) -> QueryPlan:
    return QueryPlan(
        start=spec.start,
        end=spec.end,
        advertiser_ids=spec.advertiser_ids,
        campaign_ids=spec.campaign_ids,
        seller_ids=spec.seller_ids,
        partner_ids=spec.partner_ids,
        dimensions=spec.dimensions,
        metrics=spec.metrics,
        timezone=spec.timezone,
    )
