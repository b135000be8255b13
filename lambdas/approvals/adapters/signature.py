"""Slack request verification with slack_sdk's SignatureVerifier, before anything else is read."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from slack_sdk.signature import Clock, SignatureVerifier

from approvals.adapters.secrets import SlackSecrets

TIMESTAMP = re.compile(r"[0-9]{1,15}")
MAX_SKEW_SECONDS = 300  # SignatureVerifier's own window; named here for the log line only


class InvalidSignature(Exception):
    """The request is not provably from Slack. ``reason`` is for logs only, never for the response."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SlackRequestVerifier:
    """Verifies with the cached signing secret; on a mismatch, fetches the secret again (it may have
    been rotated), at most once per ``refetch_interval`` so forged requests cannot drive Secrets
    Manager calls."""

    def __init__(self, secrets: SlackSecrets, clock: Clock | None = None, refetch_interval: float = 30.0) -> None:
        self._secrets = secrets
        self._clock = clock or Clock()
        self._refetch_interval = refetch_interval
        self._last_refetch: float | None = None

    def verify(self, body: str | bytes, headers: Mapping[str, str]) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        timestamp = lowered.get("x-slack-request-timestamp")
        signature = lowered.get("x-slack-signature")
        if not timestamp or not signature:
            raise InvalidSignature("missing signature headers")
        if not TIMESTAMP.fullmatch(timestamp):  # ASCII digits only: int() must not be the first to object
            raise InvalidSignature("malformed timestamp")
        if abs(self._clock.now() - int(timestamp)) > MAX_SKEW_SECONDS:
            raise InvalidSignature("stale or future timestamp")
        if not signature.startswith("v0="):
            raise InvalidSignature("malformed signature")
        if self._valid(body, lowered, force=False):
            return
        # The secret may have been rotated since it was cached: fetch it again once before refusing.
        now = time.monotonic()
        if self._last_refetch is None or now - self._last_refetch >= self._refetch_interval:
            self._last_refetch = now
            if self._valid(body, lowered, force=True):
                return
        raise InvalidSignature("signature mismatch")

    def verify_signed(self, body: str, timestamp: str, signature: str) -> bool:
        """True when Slack signed ``body`` at ``timestamp`` (the decider's second check of a queued request).

        Freshness is not checked here: the callback checked Slack's 5-minute window when the request
        arrived, and the caller bounds how old a queued request may be. The secret is fetched again once
        (rate-limited, as in ``verify``) before a mismatch is final.
        """
        if not TIMESTAMP.fullmatch(timestamp) or not signature.startswith("v0=") or not _utf8(body):
            return False
        headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature}
        at = _FixedClock(int(timestamp))
        if self._valid(body, headers, force=False, clock=at):
            return True
        now = time.monotonic()
        if self._last_refetch is None or now - self._last_refetch >= self._refetch_interval:
            self._last_refetch = now
            return self._valid(body, headers, force=True, clock=at)
        return False

    def _valid(self, body: str | bytes, headers: Mapping[str, str], force: bool, clock: Clock | None = None) -> bool:
        secret = self._secrets.signing_secret(force=force)
        return SignatureVerifier(signing_secret=secret, clock=clock or self._clock).is_valid_request(body, headers)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no bytes Slack could have signed
        return False
    return True


class _FixedClock(Clock):
    """The moment a request was signed, so SignatureVerifier checks the signature alone."""

    def __init__(self, at: int) -> None:
        self._at = at

    def now(self) -> float:
        return float(self._at)
