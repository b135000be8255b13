"""No secret reaches a log line at any log level: every logger at DEBUG, the whole loop, every line searched.

At DEBUG botocore prints the GetSecretValue response (the signing secret and the bot token) and slack_sdk
prints request bodies (with trigger_id); approvals.observability pins those SDK loggers at WARNING. The
second test shows that the search would find the secret if a wire logger did print it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from sandbox.local import ALICE, BOT_TOKEN, SIGNING_SECRET, LocalDeployment

RESPONSE_URL_MARK = "hooks.slack.com/actions"


class EveryLine:
    """A handler on the root logger and on the product's own (non-propagating) loggers, at DEBUG."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setLevel(logging.DEBUG)
        self.handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
        self.loggers = [logging.getLogger(), logging.getLogger("s3-batch-approvals")]

    def __enter__(self) -> EveryLine:
        self._levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.addHandler(self.handler)
            lg.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        for lg, level in zip(self.loggers, self._levels, strict=True):
            lg.removeHandler(self.handler)
            lg.setLevel(level)

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture(scope="module")
def debug_deployment() -> Iterator[LocalDeployment]:
    mp = pytest.MonkeyPatch()
    mp.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    try:
        with LocalDeployment(quiet=False) as running:
            yield running
    finally:
        mp.undo()


def test_the_whole_loop_at_debug_logs_no_token_secret_trigger_id_or_response_url(
    debug_deployment: LocalDeployment, capfd: pytest.CaptureFixture[str]
) -> None:
    d = debug_deployment
    from approvals.observability import logger

    logger.setLevel(logging.DEBUG)
    issued: list[str] = []
    original = d.slack.issue_trigger_id

    def remember(user: str | None = None) -> str:
        trigger_id = original(user)
        issued.append(trigger_id)
        return trigger_id

    d.slack.issue_trigger_id = remember  # type: ignore[method-assign]
    # given: every logger at DEBUG, the application's included
    with EveryLine() as lines:
        # when: a request is posted, approved, and a second one cancelled through the reason form
        approved = d.create_job()
        d.advance_until(approved, "Suspended")
        assert d.click(approved, "approve_job", ALICE).status == 200
        d.settle()
        cancelled = d.create_job()
        d.advance_until(cancelled, "Suspended")
        assert d.click(cancelled, "cancel_job", ALICE).status == 200
        assert d.submit_reason(ALICE, "wrong prefix").status == 200
        d.settle()
    output = lines.text() + "".join(capfd.readouterr())
    # then: the capture saw the loop at DEBUG (so the search below means something)...
    assert "DEBUG" in output
    assert d.jobs.job_status(approved) != "Suspended"
    assert issued, "the clicks carried trigger IDs"
    # ...and no secret, trigger ID or response URL is in any line
    for secret in (BOT_TOKEN, SIGNING_SECRET, *issued):
        assert secret not in output
    assert RESPONSE_URL_MARK not in output


def test_the_search_finds_a_secret_when_a_wire_logger_prints_at_debug(debug_deployment: LocalDeployment) -> None:
    # given: botocore's logger at DEBUG, as it would be without the pin in approvals.observability
    from approvals import wiring

    botocore_logger = logging.getLogger("botocore")
    before = botocore_logger.level
    botocore_logger.setLevel(logging.DEBUG)
    try:
        with EveryLine() as lines:
            # when: the signing secret is read afresh
            wiring.common().secrets.signing_secret(force=True)
    finally:
        botocore_logger.setLevel(before)
    # then
    assert SIGNING_SECRET in lines.text()
