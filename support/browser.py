"""Debian's Chromium for Playwright: where it is and the flags it needs on this kind of machine."""

from __future__ import annotations

import os
import shutil

CHROMIUM = os.environ.get("SYNTHGRAD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: No sandbox (root in a container), no GPU, and no calls home (the network is closed).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
