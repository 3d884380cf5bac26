"""Who may do what: owner tokens (stored only as hashes) and the admin token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection

from app.runs.status import Forbidden


def _bytes(token: str) -> bytes:
    # Headers arrive as latin-1 text: any character may be in a token a client sends.
    return token.encode("utf-8", "surrogatepass")


def token_hash(token: str) -> str:
    return hashlib.sha256(_bytes(token)).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def new_run_id() -> str:
    return secrets.token_urlsafe(9)  # 12 URL-safe characters, 72 random bits


class Access:
    """Checks tokens against the admin token and a run's owner hash (constant time)."""

    def __init__(self, admin_token: str | None, read_only: bool) -> None:
        self._admin = admin_token
        self.read_only = read_only

    def is_admin(self, token: str | None) -> bool:
        # Bytes, not text: compare_digest refuses non-ASCII text, and its error would tell
        # a caller whether an admin token is set.
        return bool(
            self._admin and token and hmac.compare_digest(_bytes(token), _bytes(self._admin))
        )

    def can_control(self, owner_hash: str, token: str | None) -> bool:
        """True for the admin token and for the token whose hash the run stores."""
        if self.is_admin(token):
            return True
        return bool(token) and hmac.compare_digest(
            token_hash(token or "").encode(), owner_hash.encode()
        )

    def authorize(self, owner_hash: str, token: str | None) -> None:
        if not self.can_control(owner_hash, token):
            raise Forbidden("controlling this run needs its owner token or the admin token")

    def may_create(self, token: str | None) -> None:
        if self.read_only and not self.is_admin(token):
            raise Forbidden("this server is read-only: creating runs needs the admin token")

    def owner_token_for(self, token: str | None, owner_hashes: Collection[str]) -> str:
        """The caller's token when the server made it before (it owns a run), else a new one.

        A browser owning several runs holds one cookie; a client can never choose its
        own owner token (no cookie fixation); the admin token is never handed out.
        """
        if token and not self.is_admin(token) and token_hash(token) in owner_hashes:
            return token
        return new_token()
