"""API clients: hashed secrets, signed access tokens, and the service that ties them up.

A client gets an id and a secret once (:meth:`ClientService.create`); only an argon2
hash of the secret is stored. It trades both for a short-lived HS256 access token
(:meth:`ClientService.authenticate_credentials`, :meth:`ClientService.issue_token`) and
presents the token with every request (:meth:`ClientService.authenticate_token`).
Every failure is an :class:`AuthenticationError`; no PyJWT or argon2 error escapes.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mpo_realtime.domain.errors import AuthenticationError
from mpo_realtime.domain.jobs import Client, Role
from mpo_realtime.exports.jobstore import SqlJobStore

__all__ = [
    "ClientService",
    "IssuedToken",
    "TokenSigner",
    "generate_signing_key",
    "hash_secret",
    "verify_secret",
]

_ALGORITHM = "HS256"
#: HS256 keys shorter than the hash output weaken it (RFC 7518, section 3.2).
_MIN_KEY_BYTES = 32
#: Clock difference between machines tolerated for ``iat``; ``exp`` gets none.
_IAT_SKEW_SECONDS = 60
_CLAIMS = ["sub", "iat", "exp", "iss", "jti"]
_BAD_CREDENTIALS = "invalid client credentials"
_CACHE_MAX_ENTRIES = 1024
#: tokens whose signature was checked, kept by ``TokenSigner``
_VERIFIED_MAX = 10_000


def hash_secret(secret: str, *, hasher: PasswordHasher | None = None) -> str:
    """An argon2id hash of ``secret`` (salted; the parameters are stored in the hash)."""
    return (hasher or PasswordHasher()).hash(secret)


def verify_secret(secret_hash: str, secret: str, *, hasher: PasswordHasher | None = None) -> bool:
    """Whether ``secret`` matches ``secret_hash``; a malformed hash matches nothing."""
    try:
        return (hasher or PasswordHasher()).verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def generate_signing_key() -> str:
    """A fresh random token signing key (32 bytes, URL-safe text) to persist."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    """An access token and its lifetime in seconds, as the token endpoint answers them."""

    access_token: str
    expires_in: int


class TokenSigner:
    """Issues and verifies HS256 access tokens (claims ``sub iat exp iss jti``).

    Expiry is checked against the ``now`` the caller passes, with no leeway, so the
    caller's clock (and a test's) is the only one that matters.
    """

    def __init__(
        self,
        *,
        key: bytes | str,
        ttl: timedelta = timedelta(seconds=900),
        issuer: str = "mpo-realtime",
    ) -> None:
        raw = key.encode() if isinstance(key, str) else key
        if len(raw) < _MIN_KEY_BYTES:
            raise ValueError(f"token signing key must be at least {_MIN_KEY_BYTES} bytes")
        if ttl.total_seconds() < 1:
            raise ValueError("token lifetime must be at least one second")
        self._key = raw
        self._ttl_seconds = int(ttl.total_seconds())
        self._issuer = issuer
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(self, client_id: str, *, now: datetime) -> IssuedToken:
        issued_at = int(now.timestamp())
        claims = {
            "sub": client_id,
            "iat": issued_at,
            "exp": issued_at + self._ttl_seconds,
            "iss": self._issuer,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        return IssuedToken(access_token=token, expires_in=self._ttl_seconds)

    def verify(self, token: str, *, now: datetime) -> str:
        """The client id the token was issued to; :class:`AuthenticationError` otherwise."""
        if not token:
            raise AuthenticationError("missing access token")
        # A token that verified once is the same bytes with the same signature: keep its
        # claims (the time checks below still run against ``now`` on every call).
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()
            self._verified[token] = claims
        moment = now.timestamp()
        expires = claims["exp"]
        issued = claims["iat"]
        if not isinstance(expires, int) or not isinstance(issued, int):
            raise AuthenticationError("access token has malformed time claims")
        if moment >= expires:
            raise AuthenticationError("access token has expired")
        if issued > moment + _IAT_SKEW_SECONDS:
            raise AuthenticationError("access token is issued in the future")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthenticationError("access token has no subject")
        return subject

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=self._issuer,
                leeway=0,
                # Time claims are checked against the caller's ``now`` in ``verify``.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": _CLAIMS,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationError("access token signature is invalid") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise AuthenticationError("access token algorithm is not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError("access token issuer is not accepted") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"access token lacks the {exc.claim!r} claim") from exc
        except jwt.DecodeError as exc:
            raise AuthenticationError("access token is malformed") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"access token is invalid: {exc}") from exc


class ClientService:
    """Creates, authenticates and revokes API clients.

    Parameters
    ----------
    store:
        Where clients live.
    signer:
        Issues and verifies access tokens.
    cache_ttl:
        How long :meth:`authenticate_token` may reuse a client row instead of reading
        it again, measured on the ``now`` it is given. A revocation made elsewhere
        (another process, the CLI) takes effect within this time; one made through this
        service takes effect at once.
    hasher:
        The argon2 hasher for new secrets; its defaults unless given (tests pass a
        cheaper one). Verification follows the parameters stored in each hash.
    """

    def __init__(
        self,
        *,
        store: SqlJobStore,
        signer: TokenSigner,
        cache_ttl: timedelta = timedelta(seconds=5),
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._store = store
        self._signer = signer
        self._cache_ttl = cache_ttl
        self._hasher = hasher or PasswordHasher()
        # Unknown ids are checked against this, so they cost as much as a wrong secret.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))
        self._cache: dict[str, tuple[Client, datetime]] = {}
        self._lock = threading.Lock()

    def create(
        self,
        name: str,
        *,
        advertiser_ids: Iterable[int],
        roles: Iterable[Role],
        now: datetime,
        requests_per_minute: int | None = None,
        exports_per_hour: int | None = None,
        ingest_any_advertiser: bool = False,
    ) -> tuple[Client, str]:
        """A new client and its plain secret, which is shown once and never stored.

        ``ingest_any_advertiser`` makes a trusted producer that may ingest events of
        every advertiser; it needs the ingest role and widens nothing else.
        """
        roles = frozenset(roles)
        if ingest_any_advertiser and Role.INGEST not in roles:
            raise ValueError("ingest_any_advertiser needs the ingest role")
        secret = secrets.token_urlsafe(32)
        client = Client(
            client_id=secrets.token_hex(16),
            name=name,
            secret_hash=hash_secret(secret, hasher=self._hasher),
            advertiser_ids=tuple(sorted(set(advertiser_ids))),
            roles=roles,
            created_at=now,
            requests_per_minute=requests_per_minute,
            exports_per_hour=exports_per_hour,
            ingest_any_advertiser=ingest_any_advertiser,
        )
        self._store.create_client(client)
        return client, secret

    def authenticate_credentials(self, client_id: str, secret: str) -> Client:
        """The active client with these credentials.

        Unknown id, wrong secret and revoked client fail alike, with the same message
        and about the same time, so a caller cannot tell which one it was.
        """
        client = self._store.get_client(client_id)
        secret_hash = self._dummy_hash if client is None else client.secret_hash
        matches = verify_secret(secret_hash, secret, hasher=self._hasher)
        if client is None or not matches or not client.active:
            raise AuthenticationError(_BAD_CREDENTIALS)
        return client

    def issue_token(self, client: Client, *, now: datetime) -> IssuedToken:
        return self._signer.issue(client.client_id, now=now)

    def authenticate_token_cached(self, token: str, *, now: datetime) -> Client | None:
        """Like :meth:`authenticate_token` without I/O: None when the store must be asked.

        Lets the HTTP layer answer most requests without leaving the event loop.
        """
        client = self._cached(self._signer.verify(token, now=now), now=now)
        if client is not None and not client.active:
            raise AuthenticationError("access token belongs to an unknown or revoked client")
        return client

    def authenticate_token(self, token: str, *, now: datetime) -> Client:
        """The active client a valid access token was issued to."""
        client_id = self._signer.verify(token, now=now)
        client = self._cached(client_id, now=now)
        if client is None:
            client = self._store.get_client(client_id)
            if client is not None:
                self._remember(client, now=now)
        if client is None or not client.active:
            raise AuthenticationError("access token belongs to an unknown or revoked client")
        return client

    def revoke(self, client_id: str, *, now: datetime) -> bool:
        """Revoke a client at once; ``False`` if unknown or already revoked."""
        revoked = self._store.revoke_client(client_id, now=now)
        with self._lock:
            self._cache.pop(client_id, None)
        return revoked

    def list(self) -> list[Client]:
        """Every client, revoked ones included."""
        return self._store.list_clients()

    def _cached(self, client_id: str, *, now: datetime) -> Client | None:
        with self._lock:
            entry = self._cache.get(client_id)
            if entry is None:
                return None
            client, until = entry
            if now >= until:
                del self._cache[client_id]
                return None
            return client

    def _remember(self, client: Client, *, now: datetime) -> None:
        if self._cache_ttl <= timedelta(0):
            return
        with self._lock:
            if len(self._cache) >= _CACHE_MAX_ENTRIES:
                self._cache = {k: v for k, v in self._cache.items() if now < v[1]}
                if len(self._cache) >= _CACHE_MAX_ENTRIES:
                    self._cache.clear()
            self._cache[client.client_id] = (client, now + self._cache_ttl)
