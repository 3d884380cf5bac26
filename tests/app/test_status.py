"""Statuses, controls and access checks."""

from __future__ import annotations

import pytest

from app.runs.access import Access, token_hash
from app.runs.status import TERMINAL, TRANSITIONS, Control, Forbidden, RunStatus


def test_terminal_statuses_allow_no_change_and_active_ones_can_always_end() -> None:
    assert {s for s in RunStatus if s.terminal} == TERMINAL
    assert {"finished", "stopped", "diverged", "failed", "interrupted"} == TERMINAL
    for status in set(RunStatus) - TERMINAL:
        assert {RunStatus.FAILED, RunStatus.INTERRUPTED} <= TRANSITIONS[status]
    assert RunStatus.FINISHED not in TRANSITIONS[RunStatus.PAUSED]  # resume first


def test_stop_and_shutdown_end_in_different_statuses() -> None:
    assert Control.STOP.final_status is RunStatus.STOPPED
    assert Control.SHUTDOWN.final_status is RunStatus.INTERRUPTED


def test_access_by_owner_hash_or_admin_token() -> None:
    access = Access("the-admin-token-0123", read_only=True)
    owner = "owner-token-abcdefghijklmnop"
    stored = token_hash(owner)
    assert access.can_control(stored, owner)
    assert access.can_control(stored, "the-admin-token-0123")
    assert not access.can_control(stored, "someone-else-entirely-0000")
    assert not access.can_control(stored, None) and not access.can_control(stored, "")
    with pytest.raises(Forbidden):
        access.authorize(stored, "someone-else-entirely-0000")
    with pytest.raises(Forbidden, match="read-only"):
        access.may_create(owner)
    access.may_create("the-admin-token-0123")


def test_owner_tokens_are_only_ever_made_by_the_server() -> None:
    access = Access("the-admin-token-0123", read_only=False)
    known = token_hash("a-token-the-server-made-before")
    assert access.owner_token_for("the-admin-token-0123", {known}) != "the-admin-token-0123"
    chosen = "a-client-chosen-token-of-enough-length"
    assert access.owner_token_for(chosen, {known}) != chosen  # no cookie fixation
    assert access.owner_token_for("a-token-the-server-made-before", {known}) == (
        "a-token-the-server-made-before"
    )
