"""Who may do what: owner tokens (stored only as hashes) and the admin token."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .status import Forbidden

#: An owner token a client brings is reused only if it is at least this long.
MIN_TOKEN_LENGTH = 16


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
        return bool(self._admin and token and hmac.compare_digest(token, self._admin))

    def can_control(self, owner_hash: str, token: str | None) -> bool:
        """True for the admin token and for the token whose hash the run stores."""
        if self.is_admin(token):
            return True
        return bool(token) and hmac.compare_digest(token_hash(token or ""), owner_hash)

    def authorize(self, owner_hash: str, token: str | None) -> None:
        if not self.can_control(owner_hash, token):
            raise Forbidden("controlling this run needs its owner token or the admin token")

    def may_create(self, token: str | None) -> None:
        if self.read_only and not self.is_admin(token):
            raise Forbidden("this server is read-only: creating runs needs the admin token")

    def owner_token_for(self, token: str | None) -> str:
        """The caller's own token when it may serve as an owner token, else a new one.

        A browser owning several runs holds one cookie; the admin token is never
        handed out as an owner token.
        """
        if token and not self.is_admin(token) and len(token) >= MIN_TOKEN_LENGTH:
            return token
        return new_token()
