"""slack_sdk's retries as web_client sets them: a 5xx is retried, except for a call that is not safe to send
twice (chat.postMessage), whose caller looks for what it may have posted instead."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from approvals.adapters.slack import SlackChat, web_client
from approvals.domain.ports import ChatUnavailable


class _ServerError(BaseHTTPRequestHandler):
    """Slack answering every call with HTTP 500 after reading it, as in an outage; counts the calls."""

    calls: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).calls.append(self.path.rsplit("/", 1)[-1])
        body = b'{"ok": false, "error": "fatal_error"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def slack_down() -> Iterator[str]:
    _ServerError.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ServerError)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_post_meeting_a_server_error_is_sent_once(slack_down: str) -> None:
    chat = SlackChat(web_client("xoxb-test", slack_down))
    with pytest.raises(ChatUnavailable):
        chat.post("C0APPROVALS", "text", [], None)
    assert _ServerError.calls == ["chat.postMessage"]


def test_an_update_meeting_a_server_error_is_retried(slack_down: str) -> None:
    chat = SlackChat(web_client("xoxb-test", slack_down))
    with pytest.raises(ChatUnavailable):
        chat.update("C0APPROVALS", "1700000000.000100", "text", [])
    assert _ServerError.calls == ["chat.update"] * 3  # the call and slack_sdk's two retries
