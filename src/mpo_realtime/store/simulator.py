"""A deterministic marketplace traffic simulator: pure generation, no I/O.

A :class:`World` is the static catalogue (partners, advertisers, campaigns, sellers,
products); a :class:`Simulator` turns it into minute roll-up rows (:data:`EVENT_SCHEMA`)
or into individual ingest events. Every output is a pure function of the seeds, the
parameters and the requested instant, so a back-fill and a live feed of the same minutes
agree byte for byte.

Traffic model, per UTC minute and advertiser: expected displays are the simulator rate
times the advertiser's share times a daily curve in its local hour, with log-normal noise;
the count is Poisson. Each display picks a campaign (skewed weights), a product (Zipf-like
by catalogue position) and a seller (usually the product's owner). Displays are then
rolled up per (campaign, seller, product); clicks are binomial at the campaign CTR and
cost is clicks times the campaign CPC with log-normal spread, in whole micro-units (6
decimals), so every cost is exact in the store's nano-units and in JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mpo_realtime.domain.events import EVENT_FIELDS
from mpo_realtime.store.base import ROLLUP_SCHEMA, cost_array

__all__ = [
    "EVENT_SCHEMA",
    "Advertiser",
    "Campaign",
    "Seller",
    "Simulator",
    "World",
]

EVENT_SCHEMA: pa.Schema = ROLLUP_SCHEMA

_IntArray = npt.NDArray[np.int64]
_FloatArray = npt.NDArray[np.float64]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_MINUTE = 60_000_000
_MASK64 = (1 << 64) - 1
_NANOS_PER_MICRO = 1_000
# Independent RNG streams per purpose, so adding one never shifts another.
_STREAM_SETUP = 1
_STREAM_MINUTE = 2
_STREAM_EVENTS = 3

# (currency, share of advertisers, typical UTC offset in hours, CPC scale). The CPC scale
# keeps a yen click at yen prices (5-150) instead of a fraction of a yen.
_CURRENCIES: tuple[tuple[str, float, int, float], ...] = (
    ("EUR", 0.40, 1, 1.0),
    ("USD", 0.20, -5, 1.0),
    ("GBP", 0.15, 0, 1.0),
    ("BRL", 0.15, -3, 1.0),
    ("JPY", 0.10, 9, 100.0),
)
_CURRENCY_OFFSET = {code: offset for code, _, offset, _ in _CURRENCIES}

_CTR_RANGE = (0.002, 0.02)
_CPC_RANGE = (0.05, 1.50)
_COST_SIGMA = 0.35  # log-normal spread of the price of one click around the campaign CPC
_ZIPF_EXPONENT = 1.05  # top 10 % of a 500-product catalogue get ~70 % of displays
_OWNER_SHARE = 0.85  # share of a product's displays shown by its owning seller
_MINUTE_NOISE_SIGMA = 0.15  # per advertiser and minute, on top of Poisson noise
_ODD_PRODUCT_SHARE = 0.01  # product IDs with commas, quotes or non-ASCII letters
_EVENT_KEYS = EVENT_FIELDS

_SURNAMES = (
    "Durand", "Lefèvre", "Moreau", "Girard", "Rousseau", "Faure", "Bernard", "Dubois",
    "Müller", "Schmidt", "Becker", "Hoffmann", "Rossi", "Bianchi", "Esposito", "Oliveira",
    "Souza", "Pereira", "Almeida", "García", "López", "Martín", "Smith", "Taylor", "Walker",
    "Evans", "Tanaka", "Suzuki", "Watanabe", "Nilsson", "Lindqvist", "Kowalski", "O'Brien",
)  # fmt: skip
_ADJECTIVES = (
    "Nordic", "Urban", "Coastal", "Alpine", "Golden", "Green", "Modern", "Royal", "Bright",
    "Little", "Wild", "Silver", "Happy", "Northern", "Blue", "Rustic", "Smart", "Pure",
)  # fmt: skip
_NOUNS = (
    "Gear", "Home", "Kitchen", "Outdoor", "Style", "Tech", "Garden", "Pets", "Books",
    "Sports", "Beauty", "Toys", "Living", "Bikes", "Crafts", "Audio", "Tools", "Wear",
)  # fmt: skip
_NAME_PATTERNS = (
    "Maison {s}",
    "{a} {n} Co.",
    "{s} & Fils",
    "{s} & Sons",
    "{s} GmbH",
    "Casa {s}",
    "{a} {n}",
    "{n} by {s}",
    "{s}, {n} & Co.",  # a comma, so CSV quoting gets exercised
    "{s} Shōten",
    "The {a} {n} Store",
    "{a}{n}",
)
_ODD_PRODUCT_FORMS = (
    'SKU-{n:06d}-{v}, "XL"',
    "SKU-{n:06d}-{v}, Größe 42",
    "Café-{n:06d}-{v}",
    'SKU-{n:06d}-{v} 12" screen',
    "SKU-{n:06d}-{v};ÉTÉ",
    "ſku-{n:06d}-{v}-日本",
)


@dataclass(frozen=True, slots=True)
class Seller:
    """A marketplace seller; belongs to exactly one advertiser."""

    seller_id: int
    name: str


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign of one advertiser: click-through rate and cost per click (its currency)."""

    campaign_id: int
    ctr: float
    cpc: float


@dataclass(frozen=True, slots=True)
class Advertiser:
    """An advertiser, its campaigns, sellers and catalogue.

    ``products`` is ordered by popularity: position ``k`` gets displays in proportion to
    ``1 / (k + 1) ** 1.05``.
    """

    advertiser_id: int
    partner_id: int
    currency: str
    campaigns: tuple[Campaign, ...]
    sellers: tuple[Seller, ...]
    products: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class World:
    """The static catalogue the simulator draws traffic for."""

    advertisers: tuple[Advertiser, ...]

    @classmethod
    def generate(
        cls,
        *,
        seed: int = 0,
        partners: int = 3,
        advertisers_per_partner: int = 3,
        campaigns: int = 6,
        sellers: int = 12,
        products: int = 500,
    ) -> World:
        """A reproducible random world; campaigns, sellers and products are per advertiser."""
        for name, value in (
            ("partners", partners),
            ("advertisers_per_partner", advertisers_per_partner),
            ("campaigns", campaigns),
            ("sellers", sellers),
            ("products", products),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if products > 1_000_000:
            raise ValueError("products must be at most 1,000,000 per advertiser")
        rng = np.random.default_rng(_seed_words(seed, _STREAM_SETUP))
        n_adv = partners * advertisers_per_partner
        # IDs are unique across the world: the service derives its entity catalog from them.
        partner_ids = _unique_ids(rng, partners, 10_000, 99_999)
        advertiser_ids = _unique_ids(rng, n_adv, 100_000, 999_999)
        campaign_ids = _unique_ids(rng, n_adv * campaigns, 10_000_000, 99_999_999)
        seller_ids = _unique_ids(rng, n_adv * sellers, 100_000_000, 999_999_999)
        codes = [c[0] for c in _CURRENCIES]
        shares = np.array([c[1] for c in _CURRENCIES])
        cpc_scale = {c[0]: c[3] for c in _CURRENCIES}
        built: list[Advertiser] = []
        for a in range(n_adv):
            currency = codes[int(rng.choice(len(codes), p=shares / shares.sum()))]
            ctrs = _log_uniform(rng, *_CTR_RANGE, campaigns)
            cpcs = _log_uniform(rng, *_CPC_RANGE, campaigns) * cpc_scale[currency]
            built.append(
                Advertiser(
                    advertiser_id=int(advertiser_ids[a]),
                    partner_id=int(partner_ids[a // advertisers_per_partner]),
                    currency=currency,
                    campaigns=tuple(
                        Campaign(int(campaign_ids[a * campaigns + c]), float(ctr), float(cpc))
                        for c, (ctr, cpc) in enumerate(zip(ctrs, np.round(cpcs, 4), strict=True))
                    ),
                    sellers=tuple(
                        Seller(int(seller_ids[a * sellers + s]), name)
                        for s, name in enumerate(_seller_names(rng, sellers))
                    ),
                    products=_product_ids(rng, products),
                )
            )
        return cls(tuple(built))


class Simulator:
    """Traffic for a :class:`World`: minute roll-up rows and individual ingest events.

    ``displays_per_minute`` is the average over a day for the whole world; the actual
    rate follows each advertiser's daily curve.
    """

    def __init__(
        self, world: World, *, seed: int = 0, displays_per_minute: float = 20_000.0
    ) -> None:
        if not world.advertisers:
            raise ValueError("the world has no advertisers")
        if not (math.isfinite(displays_per_minute) and displays_per_minute >= 0):
            raise ValueError("displays_per_minute must be a non-negative finite number")
        for adv in world.advertisers:
            if not (adv.campaigns and adv.sellers and adv.products):
                raise ValueError(
                    f"advertiser {adv.advertiser_id} needs campaigns, sellers, products"
                )
        self.world = world
        self.seed = seed
        self.displays_per_minute = float(displays_per_minute)
        rng = np.random.default_rng(_seed_words(seed, _STREAM_SETUP))
        advs = world.advertisers
        n_adv = len(advs)

        self._adv_id = np.array([a.advertiser_id for a in advs], dtype=np.int64)
        self._adv_partner = np.array([a.partner_id for a in advs], dtype=np.int64)
        share = rng.lognormal(0.0, 0.8, n_adv)
        self._adv_share: _FloatArray = share / share.sum()
        # "Local-ish" hour: the currency's usual offset, give or take an hour.
        jitter = rng.integers(-1, 2, n_adv)
        self._adv_offset_h = np.array(
            [_CURRENCY_OFFSET.get(a.currency, 0) for a in advs], dtype=np.float64
        ) + jitter.astype(np.float64)

        # Campaigns, sellers and products are flattened into global arrays; per advertiser
        # they occupy one contiguous segment [offset[a], offset[a + 1]).
        camp_n = np.array([len(a.campaigns) for a in advs], dtype=np.int64)
        sell_n = np.array([len(a.sellers) for a in advs], dtype=np.int64)
        prod_n = np.array([len(a.products) for a in advs], dtype=np.int64)
        self._camp_off = _offsets(camp_n)
        self._sell_off = _offsets(sell_n)
        self._prod_off = _offsets(prod_n)
        self._camp_adv = np.repeat(np.arange(n_adv, dtype=np.int64), camp_n)
        self._camp_id = np.array([c.campaign_id for a in advs for c in a.campaigns], np.int64)
        self._camp_ctr = np.array([c.ctr for a in advs for c in a.campaigns], np.float64)
        self._camp_cpc = np.array([c.cpc for a in advs for c in a.campaigns], np.float64)
        self._sell_id = np.array([s.seller_id for a in advs for s in a.sellers], np.int64)
        self._sell_name = pa.array([s.name for a in advs for s in a.sellers], pa.string())
        self._sell_name_list = [s.name for a in advs for s in a.sellers]
        self._prod_name = pa.array([p for a in advs for p in a.products], pa.string())
        self._prod_name_list = [p for a in advs for p in a.products]

        self._camp_pick = _Alias(rng.lognormal(0.0, 0.7, int(camp_n.sum())), camp_n)
        self._sell_pick = _Alias(rng.lognormal(0.0, 1.0, int(sell_n.sum())), sell_n)
        zipf = np.concatenate(
            [np.arange(1, n + 1, dtype=np.float64) ** -_ZIPF_EXPONENT for n in prod_n.tolist()]
        )
        self._prod_pick = _Alias(zipf, prod_n)
        # Each product has one owning seller (big sellers own more products).
        prod_adv = np.repeat(np.arange(n_adv, dtype=np.int64), prod_n)
        self._prod_owner = self._sell_pick.draw(rng, prod_adv)
        # Roll-up key = campaign * (S * P) + local seller * P + local product; fits in int64.
        self._key_p = int(prod_n.max())
        self._key_sp = int(sell_n.max()) * self._key_p
        if int(camp_n.sum()) * self._key_sp >= 2**62:
            raise ValueError("world too large for the roll-up key")

    # -- public API ---------------------------------------------------------------------

    def minute_rows(self, minute: datetime) -> pa.RecordBatch:
        """Roll-up rows of the UTC minute containing ``minute`` (an aware datetime)."""
        index = _epoch_us(minute) // _US_PER_MINUTE
        return self._to_batch([self._minute_columns(index)])

    def backfill(
        self, start: datetime, end: datetime, *, batch_rows: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """Rows of every minute starting in ``[start, end)``, in batches of ``batch_rows``.

        The rows are exactly those of :meth:`minute_rows` for each minute, in minute order;
        only the last batch may be shorter.
        """
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        first = -(-_epoch_us(start) // _US_PER_MINUTE)  # ceiling: minutes starting >= start
        stop = -(-_epoch_us(end) // _US_PER_MINUTE)
        pending: list[dict[str, Any]] = []
        pending_rows = 0
        for index in range(first, stop):
            cols = self._minute_columns(index)
            pending.append(cols)
            pending_rows += len(cols["displays"])
            if pending_rows >= batch_rows:
                merged = _concat(pending)
                done = pending_rows - pending_rows % batch_rows
                for lo in range(0, done, batch_rows):
                    yield self._to_batch([_slice(merged, lo, lo + batch_rows)])
                pending = [_slice(merged, done, pending_rows)]
                pending_rows -= done
        if pending_rows:
            yield self._to_batch(pending)

    def events(self, now: datetime, count: int) -> list[dict[str, object]]:
        """``count`` small ingest events with timestamps in ``[start of now's minute, now]``.

        Dicts are JSON-ready in the ingest API's field names; IDs are digit strings.
        """
        if count < 0:
            raise ValueError("count must be non-negative")
        now_us = _epoch_us(now)
        rng = np.random.default_rng(
            [*_seed_words(self.seed, _STREAM_EVENTS), now_us & _MASK64, count]
        )
        minute_ms = (now_us // _US_PER_MINUTE) * 60_000
        now_ms = now_us // 1000
        weight = self._adv_share * _daily_curve(self._local_hours(now_us // _US_PER_MINUTE))
        adv = np.searchsorted(np.cumsum(weight) / weight.sum(), rng.random(count), side="right")
        adv = np.minimum(adv, len(weight) - 1).astype(np.int64)
        camp, seller, prod = self._draw(rng, adv)
        ts_ms = rng.integers(minute_ms, now_ms + 1, count)
        displays = np.minimum(1 + rng.poisson(0.4, count), 4)
        clicks = (rng.random(count) < self._camp_ctr[camp] * displays).astype(np.int64)
        micros = self._cost_micros(clicks, camp, self._click_price_spread(rng, count))
        columns = zip(
            [_iso_ms(t) for t in ts_ms.tolist()],
            self._adv_id[adv].astype(str).tolist(),
            self._adv_partner[adv].astype(str).tolist(),
            self._camp_id[camp].astype(str).tolist(),
            self._sell_id[seller].astype(str).tolist(),
            [self._prod_name_list[p] for p in prod.tolist()],
            displays.tolist(),
            clicks.tolist(),
            # m / 1e6 is the double nearest the 6-decimal amount, and prints as it
            (micros / 1e6).tolist(),
            [self._sell_name_list[s] for s in seller.tolist()],
            strict=True,
        )
        return [dict(zip(_EVENT_KEYS, values, strict=True)) for values in columns]

    # -- generation -----------------------------------------------------------------------

    def _local_hours(self, minute_index: int) -> _FloatArray:
        utc_hour = (minute_index % 1440) / 60.0
        hours: _FloatArray = (utc_hour + self._adv_offset_h) % 24.0
        return hours

    def _minute_columns(self, minute_index: int) -> dict[str, Any]:
        """Numpy columns of one minute, sorted by (campaign, seller, product)."""
        # Seeded by the minute itself, so any minute can be drawn alone and in any order.
        rng = np.random.default_rng(
            [*_seed_words(self.seed, _STREAM_MINUTE), minute_index & _MASK64]
        )
        n_adv = len(self._adv_share)
        noise = rng.lognormal(-(_MINUTE_NOISE_SIGMA**2) / 2, _MINUTE_NOISE_SIGMA, n_adv)
        expected = (
            self.displays_per_minute
            * self._adv_share
            * _daily_curve(self._local_hours(minute_index))
            * noise
        )
        per_adv = rng.poisson(expected)
        adv = np.repeat(np.arange(n_adv, dtype=np.int64), per_adv)
        camp, seller, prod = self._draw(rng, adv)
        # Roll the individual displays up: one row per distinct (campaign, seller, product).
        key = (
            camp * self._key_sp
            + (seller - self._sell_off[adv]) * self._key_p
            + (prod - self._prod_off[adv])
        )
        keys, displays = np.unique(key, return_counts=True)
        camp = keys // self._key_sp
        rest = keys % self._key_sp
        row_adv = self._camp_adv[camp]
        seller = self._sell_off[row_adv] + rest // self._key_p
        prod = self._prod_off[row_adv] + rest % self._key_p
        displays = displays.astype(np.int64)
        clicks = rng.binomial(displays, self._camp_ctr[camp]).astype(np.int64)
        micros = self._cost_micros(clicks, camp, self._click_price_spread(rng, len(keys)))
        return {
            "minute": np.full(len(keys), minute_index * _US_PER_MINUTE, dtype=np.int64),
            "adv": row_adv,
            "camp": camp,
            "seller": seller,
            "prod": prod,
            "displays": displays,
            "clicks": clicks,
            "cost_micros": micros,
        }

    def _draw(
        self, rng: np.random.Generator, adv: _IntArray
    ) -> tuple[_IntArray, _IntArray, _IntArray]:
        """Campaign, seller and product (global indices) for displays of advertisers ``adv``."""
        camp = self._camp_pick.draw(rng, adv)
        prod = self._prod_pick.draw(rng, adv)
        other = self._sell_pick.draw(rng, adv)
        seller = np.where(rng.random(len(adv)) < _OWNER_SHARE, self._prod_owner[prod], other)
        return camp, seller, prod

    def _cost_micros(self, clicks: _IntArray, camp: _IntArray, spread: _FloatArray) -> _IntArray:
        micros: _IntArray = np.rint(clicks * self._camp_cpc[camp] * spread * 1e6).astype(np.int64)
        return micros

    @staticmethod
    def _click_price_spread(rng: np.random.Generator, n: int) -> _FloatArray:
        # Mean-one log-normal, so the average click costs the campaign CPC.
        spread: _FloatArray = rng.lognormal(-(_COST_SIGMA**2) / 2, _COST_SIGMA, n)
        return spread

    def _to_batch(self, parts: list[dict[str, Any]]) -> pa.RecordBatch:
        cols = _concat(parts) if len(parts) != 1 else parts[0]
        adv = cols["adv"]
        return pa.RecordBatch.from_arrays(
            [
                pa.array(cols["minute"], pa.timestamp("us", tz="UTC")),
                pa.array(self._adv_id[adv]),
                pa.array(self._adv_partner[adv]),
                pa.array(self._camp_id[cols["camp"]]),
                pa.array(self._sell_id[cols["seller"]]),
                self._prod_name.take(pa.array(cols["prod"])),
                pa.array(cols["displays"]),
                pa.array(cols["clicks"]),
                cost_array(cols["cost_micros"] * _NANOS_PER_MICRO),
                self._sell_name.take(pa.array(cols["seller"])),
            ],
            schema=EVENT_SCHEMA,
        )


# -- helpers ------------------------------------------------------------------------------


def _daily_curve(local_hour: _FloatArray) -> _FloatArray:
    """Relative display rate by local hour: mean 1 over a day, low ~04:00, peak ~20:00."""
    theta = 2.0 * np.pi * (local_hour - 19.0) / 24.0
    curve: _FloatArray = 1.0 + 0.6 * np.cos(theta) + 0.3 * np.cos(2.0 * theta - 1.0)
    return curve


def _seed_words(seed: int, stream: int) -> list[int]:
    if seed < 0:
        raise ValueError("seed must be non-negative")
    return [seed, stream]


def _epoch_us(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _iso_ms(ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def _offsets(counts: _IntArray) -> _IntArray:
    out: _IntArray = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return out


class _Alias:
    """Walker/Vose alias tables for many small categorical distributions at once.

    Segment ``a`` (items ``[off[a], off[a + 1])``) is one distribution; :meth:`draw`
    picks an item of segment ``adv[i]`` for every ``i`` in O(1), where a binary search
    over a CDF is several times slower on big catalogues.
    """

    def __init__(self, weights: _FloatArray, counts: _IntArray) -> None:
        self.off = _offsets(counts)
        self.size = counts.astype(np.float64)
        self.prob = np.ones(len(weights), dtype=np.float64)
        self.alias = np.arange(len(weights), dtype=np.int64)
        for lo, hi in zip(self.off[:-1].tolist(), self.off[1:].tolist(), strict=True):
            seg = weights[lo:hi]
            scaled = (seg * ((hi - lo) / seg.sum())).tolist()
            small = [i for i, p in enumerate(scaled) if p < 1.0]
            large = [i for i, p in enumerate(scaled) if p >= 1.0]
            while small and large:
                under, over = small.pop(), large.pop()
                self.prob[lo + under] = scaled[under]
                self.alias[lo + under] = lo + over
                scaled[over] += scaled[under] - 1.0
                (small if scaled[over] < 1.0 else large).append(over)
            # Leftovers (rounding) keep probability 1 and alias themselves.

    def draw(self, rng: np.random.Generator, adv: _IntArray) -> _IntArray:
        """One global item index per entry of ``adv``."""
        size = self.size[adv]
        x = rng.random(len(adv)) * size
        slot = np.minimum(x.astype(np.int64), (size - 1).astype(np.int64))
        # The fractional part of x is a second uniform, independent of the slot.
        item = self.off[adv] + slot
        picked: _IntArray = np.where(x - slot < self.prob[item], item, self.alias[item])
        return picked


def _concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _slice(cols: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    return {name: col[lo:hi] for name, col in cols.items()}


def _unique_ids(rng: np.random.Generator, n: int, low: int, high: int) -> _IntArray:
    if n > high - low + 1:
        raise ValueError(f"cannot draw {n} distinct IDs from [{low}, {high}]")
    ids: _IntArray = (rng.choice(high - low + 1, size=n, replace=False) + low).astype(np.int64)
    return ids


def _log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> _FloatArray:
    values: _FloatArray = np.exp(rng.uniform(math.log(low), math.log(high), n))
    return values


def _seller_names(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct shop names built from word lists."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        pattern = _NAME_PATTERNS[int(rng.integers(len(_NAME_PATTERNS)))]
        name = pattern.format(
            s=_SURNAMES[int(rng.integers(len(_SURNAMES)))],
            a=_ADJECTIVES[int(rng.integers(len(_ADJECTIVES)))],
            n=_NOUNS[int(rng.integers(len(_NOUNS)))],
        )
        if name in seen:
            # Word lists run out for big worlds: a branch number keeps names distinct.
            name = f"{name} #{len(names) + 1}"
        seen.add(name)
        names.append(name)
    return names


def _product_ids(rng: np.random.Generator, n: int) -> tuple[str, ...]:
    """``n`` distinct SKU-like IDs; about 1 % contain commas, quotes or non-ASCII letters."""
    numbers = rng.choice(1_000_000, size=n, replace=False).tolist()
    variants = rng.integers(0, 26, n).tolist()
    odd = (rng.random(n) < _ODD_PRODUCT_SHARE).tolist()
    forms = rng.integers(0, len(_ODD_PRODUCT_FORMS), n).tolist()
    out: list[str] = []
    for number, variant, is_odd, form in zip(numbers, variants, odd, forms, strict=True):
        letter = chr(ord("A") + variant)
        # The number alone is unique, so every form stays distinct.
        template = _ODD_PRODUCT_FORMS[form] if is_odd else "SKU-{n:06d}-{v}"
        out.append(template.format(n=number, v=letter))
    return tuple(out)
