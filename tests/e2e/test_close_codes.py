"""The page's run stream gives up on the server's refusals (close codes after the handshake)."""

from __future__ import annotations

from typing import Any

from support.live import LiveServer

#: Opens a RunStream for `runId` with the page's own module; resolves with the connection
#: states it reported and how many sockets it opened, 3 s later.
FOLLOW = """async (runId) => {
  const opened = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url) { super(url); opened.push(url); }
  };
  const { RunStream } = await import("/static/js/run-stream.js");
  const states = [];
  new RunStream(runId, { onConnection: (state) => states.push(state) });
  await new Promise((resolve) => setTimeout(resolve, 3000));
  window.WebSocket = Native;
  return { states, opened: opened.length };
}"""


def test_a_stream_for_no_such_run_closes_once_without_reconnecting(
    page: Any, server: LiveServer
) -> None:
    page.goto(server.url + "/")
    followed = page.evaluate(FOLLOW, "no-such-run")
    # 4404 after the handshake: the page hears it, says "closed" and stops (an HTTP 403 at
    # the handshake would read as 1006: "reconnecting", again and again).
    assert followed == {"states": ["live", "closed"], "opened": 1}
