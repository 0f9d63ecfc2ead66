"""Tests for client secrets, access tokens and the client service."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, select

from mpo_realtime.domain.errors import AuthenticationError
from mpo_realtime.domain.jobs import Client, Role
from mpo_realtime.exports.clients import (
    ClientService,
    TokenSigner,
    generate_signing_key,
    hash_secret,
    verify_secret,
)
from mpo_realtime.exports.jobstore import CLIENTS, SqlJobStore

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
KEY = "test-signing-key-0123456789abcdefghijklmnop"
#: argon2 at its cheapest: the service's logic, not the hash's cost, is under test here
LIGHT_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _segments(token: str) -> tuple[dict[str, object], dict[str, object], str]:
    header, payload, signature = token.split(".")
    padding = "=" * (-len(payload) % 4)
    return (
        json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))),
        json.loads(base64.urlsafe_b64decode(payload + padding)),
        signature,
    )


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(key=KEY, ttl=timedelta(minutes=15))


@pytest.fixture
def service(job_store: SqlJobStore, signer: TokenSigner) -> ClientService:
    return ClientService(
        store=job_store, signer=signer, cache_ttl=timedelta(seconds=5), hasher=LIGHT_HASHER
    )


@pytest.fixture
def created(service: ClientService) -> tuple[Client, str]:
    return service.create("Acme", advertiser_ids=[102, 7, 102], roles=[Role.REPORT], now=NOW)


# -- secrets -----------------------------------------------------------------------------


def test_hash_secret_is_salted_argon2id_and_verifies() -> None:
    first = hash_secret("s3cret")
    second = hash_secret("s3cret")

    assert first.startswith("$argon2id$")
    assert first != second
    assert "s3cret" not in first
    assert verify_secret(first, "s3cret") is True
    assert verify_secret(second, "s3cret") is True
    assert verify_secret(first, "s3cret!") is False
    assert verify_secret("not-a-hash", "s3cret") is False


def test_generate_signing_key_is_fresh_and_usable() -> None:
    keys = {generate_signing_key() for _ in range(3)}

    assert len(keys) == 3
    assert all(len(key) >= 43 for key in keys)
    for key in keys:
        # usable: a token signed with it verifies with it, and with no other key
        token = TokenSigner(key=key).issue("client-1", now=NOW).access_token
        assert TokenSigner(key=key).verify(token, now=NOW) == "client-1"
        with pytest.raises(AuthenticationError):
            TokenSigner(key=KEY).verify(token, now=NOW)


def test_token_signer_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenSigner(key="short")


# -- tokens ------------------------------------------------------------------------------


def test_token_signer_issue_and_verify_round_trip(signer: TokenSigner) -> None:
    issued = signer.issue("client-1", now=NOW)

    header, claims, _ = _segments(issued.access_token)
    assert issued.expires_in == 900
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert set(claims) == {"sub", "iat", "exp", "iss", "jti"}
    assert (claims["sub"], claims["iss"]) == ("client-1", "mpo-realtime")
    assert (claims["iat"], claims["exp"]) == (int(NOW.timestamp()), int(NOW.timestamp()) + 900)
    assert signer.verify(issued.access_token, now=NOW + timedelta(seconds=899)) == "client-1"


def test_token_signer_tokens_are_unique(signer: TokenSigner) -> None:
    first = signer.issue("client-1", now=NOW).access_token
    second = signer.issue("client-1", now=NOW).access_token

    assert first != second


def test_token_signer_expired_token_is_refused(signer: TokenSigner) -> None:
    token = signer.issue("client-1", now=NOW).access_token

    with pytest.raises(AuthenticationError, match="expired"):
        signer.verify(token, now=NOW + timedelta(seconds=900))


def test_token_signer_token_from_the_future_is_refused(signer: TokenSigner) -> None:
    token = signer.issue("client-1", now=NOW + timedelta(hours=1)).access_token

    with pytest.raises(AuthenticationError, match="future"):
        signer.verify(token, now=NOW)


def test_token_signer_other_key_is_refused(signer: TokenSigner) -> None:
    token = TokenSigner(key=generate_signing_key()).issue("client-1", now=NOW).access_token

    with pytest.raises(AuthenticationError, match="signature"):
        signer.verify(token, now=NOW)


def test_token_signer_tampered_payload_is_refused(signer: TokenSigner) -> None:
    header, claims, signature = _segments(signer.issue("client-1", now=NOW).access_token)
    forged = ".".join([_b64(header), _b64({**claims, "sub": "client-2"}), signature])

    with pytest.raises(AuthenticationError, match="signature"):
        signer.verify(forged, now=NOW)


def test_token_signer_alg_none_is_refused(signer: TokenSigner) -> None:
    _, claims, _ = _segments(signer.issue("client-1", now=NOW).access_token)
    unsigned = ".".join([_b64({"alg": "none", "typ": "JWT"}), _b64(claims), ""])

    with pytest.raises(AuthenticationError, match="algorithm"):
        signer.verify(unsigned, now=NOW)


def test_token_signer_wrong_issuer_is_refused(signer: TokenSigner) -> None:
    token = TokenSigner(key=KEY, issuer="someone-else").issue("client-1", now=NOW).access_token

    with pytest.raises(AuthenticationError, match="issuer"):
        signer.verify(token, now=NOW)


def test_token_signer_missing_claim_is_refused(signer: TokenSigner) -> None:
    claims = {"sub": "client-1", "iat": int(NOW.timestamp()), "iss": "mpo-realtime", "jti": "x"}
    token = jwt.encode(claims, KEY, algorithm="HS256")

    with pytest.raises(AuthenticationError, match="'exp' claim"):
        signer.verify(token, now=NOW)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "missing"),
        ("garbage", "malformed"),
        ("a.b.c", "malformed"),
        ("Bearer abc.def.ghi", "malformed"),
        (f"{_b64({'alg': 'HS256'})}.{_b64({'sub': 1})}.sig", "signature"),
    ],
    ids=["empty", "garbage", "three-dots", "bearer-prefix", "unsigned-garbage"],
)
def test_token_signer_garbage_is_refused(signer: TokenSigner, token: str, message: str) -> None:
    with pytest.raises(AuthenticationError, match=message) as info:
        signer.verify(token, now=NOW)

    assert type(info.value) is AuthenticationError


# -- the service -------------------------------------------------------------------------


def test_service_create_returns_client_and_secret_once(
    service: ClientService, job_store: SqlJobStore, created: tuple[Client, str]
) -> None:
    client, secret = created

    assert client == Client(
        client_id=client.client_id,
        name="Acme",
        secret_hash=client.secret_hash,
        advertiser_ids=(7, 102),
        roles=frozenset({Role.REPORT}),
        created_at=NOW,
    )
    assert len(client.client_id) == 32 and int(client.client_id, 16) >= 0
    assert len(secret) >= 43
    assert job_store.get_client(client.client_id) == client
    assert service.list() == [client]


def test_service_stores_secret_only_hashed(
    job_store_url: str, job_store: SqlJobStore, created: tuple[Client, str]
) -> None:
    client, secret = created
    engine = create_engine(job_store_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(CLIENTS)).mappings().all()
    finally:
        engine.dispose()

    assert len(rows) == 1
    assert all(secret not in str(value) for value in rows[0].values())
    assert rows[0]["secret_hash"] == client.secret_hash
    assert verify_secret(client.secret_hash, secret) is True


def test_service_authenticate_credentials_round_trip(
    service: ClientService, created: tuple[Client, str]
) -> None:
    client, secret = created

    assert service.authenticate_credentials(client.client_id, secret) == client


@pytest.mark.parametrize("case", ["wrong-secret", "unknown-id", "revoked"])
def test_service_authenticate_credentials_refuses_alike(
    service: ClientService, created: tuple[Client, str], case: str
) -> None:
    client, secret = created
    client_id = "0" * 32 if case == "unknown-id" else client.client_id
    if case == "wrong-secret":
        secret = secret + "x"
    if case == "revoked":
        assert service.revoke(client.client_id, now=NOW) is True

    with pytest.raises(AuthenticationError) as info:
        service.authenticate_credentials(client_id, secret)

    assert str(info.value) == "invalid client credentials"


def test_service_authenticate_token_round_trip(
    service: ClientService, created: tuple[Client, str]
) -> None:
    client, secret = created
    issued = service.issue_token(
        service.authenticate_credentials(client.client_id, secret), now=NOW
    )

    assert issued.expires_in == 15 * 60
    assert service.authenticate_token(issued.access_token, now=NOW) == client
    assert service.authenticate_token(issued.access_token, now=NOW + timedelta(seconds=899)) == (
        client
    )
    with pytest.raises(AuthenticationError):
        service.authenticate_token(issued.access_token, now=NOW + timedelta(seconds=900))


def test_service_authenticate_token_of_unknown_client_is_refused(
    service: ClientService, signer: TokenSigner
) -> None:
    token = signer.issue("0" * 32, now=NOW).access_token

    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        service.authenticate_token(token, now=NOW)


def test_service_authenticate_token_sees_revocation_once_cache_ttl_passes(
    service: ClientService, job_store: SqlJobStore, created: tuple[Client, str]
) -> None:
    client, _ = created
    token = service.issue_token(client, now=NOW).access_token
    assert service.authenticate_token(token, now=NOW) == client

    # Revoked elsewhere (the CLI, another server process): this service's cache lags.
    assert job_store.revoke_client(client.client_id, now=NOW) is True

    assert service.authenticate_token(token, now=NOW + timedelta(seconds=4)) == client
    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        service.authenticate_token(token, now=NOW + timedelta(seconds=5))


def test_service_revoke_takes_effect_at_once(
    service: ClientService, created: tuple[Client, str]
) -> None:
    client, _ = created
    token = service.issue_token(client, now=NOW).access_token
    service.authenticate_token(token, now=NOW)

    assert service.revoke(client.client_id, now=NOW) is True
    assert service.revoke(client.client_id, now=NOW) is False

    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        service.authenticate_token(token, now=NOW)
    assert [c.revoked_at for c in service.list()] == [NOW]


def test_service_without_cache_reads_every_time(
    job_store: SqlJobStore, signer: TokenSigner
) -> None:
    service = ClientService(
        store=job_store, signer=signer, cache_ttl=timedelta(0), hasher=LIGHT_HASHER
    )
    client, _ = service.create("Ingest", advertiser_ids=[1], roles=[Role.INGEST], now=NOW)
    token = service.issue_token(client, now=NOW).access_token
    assert service.authenticate_token(token, now=NOW) == client

    job_store.revoke_client(client.client_id, now=NOW)

    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        service.authenticate_token(token, now=NOW)


def test_token_signer_verified_token_still_expires(signer: TokenSigner) -> None:
    token = signer.issue("client-1", now=NOW).access_token
    assert signer.verify(token, now=NOW) == "client-1"  # verified once: its claims are kept
    assert signer.verify(token, now=NOW + timedelta(minutes=14)) == "client-1"
    with pytest.raises(AuthenticationError, match="expired"):
        signer.verify(token, now=NOW + timedelta(minutes=15))
