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

    def _valid(self, body: str | bytes, headers: Mapping[str, str], force: bool) -> bool:
        secret = self._secrets.signing_secret(force=force)
        return SignatureVerifier(signing_secret=secret, clock=self._clock).is_valid_request(body, headers)
