"""Slack Web API through slack_sdk.WebClient, with Slack's retry handlers and errors mapped."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from approvals.domain.ports import ChatUnavailable, Pacer

HISTORY_PAGE_SIZE = 100
HISTORY_PAGES = 10  # how far back find_own_message reads: 1,000 messages


# Calls that create something each time they are sent. A server error or a dropped connection does not say
# whether Slack acted, so resending could post twice; these are retried only on HTTP 429 (Slack did nothing).
# The caller recovers instead: the notifier looks for the message it may have posted before posting again.
NOT_IDEMPOTENT = frozenset({"chat.postMessage"})


def _method_of(request: HttpRequest) -> str:
    return request.url.rstrip("/").rsplit("/", 1)[-1]


class _IdempotentOnly(RetryHandler):
    """Mixed in before one of Slack's retry handlers: the same retry, except for calls not safe to send twice."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if _method_of(request) in NOT_IDEMPOTENT:
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


class IdempotentServerErrorRetryHandler(_IdempotentOnly, ServerErrorRetryHandler):
    """Slack's 5xx retry, except for calls that are not safe to send twice."""


class IdempotentConnectionErrorRetryHandler(_IdempotentOnly, ConnectionErrorRetryHandler):
    """Slack's connection-error retry, except for calls that are not safe to send twice."""


class DeadlineAwareRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries HTTP 429 after Retry-After, but only while the wait still fits before ``deadline``."""

    def __init__(self, max_retry_count: int, seconds_left: Callable[[], float]) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._seconds_left = seconds_left

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None
        retry_after = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["1"])
        try:
            wait = float(retry_after[0]) + 1.0
        except (TypeError, ValueError):
            wait = 2.0
        return wait < self._seconds_left()


def web_client(
    token: str,
    base_url: str,
    *,
    timeout: int = 10,
    seconds_left: Callable[[], float] | None = None,
    retries: bool = True,
) -> WebClient:
    """A WebClient that retries connection errors and 5xx (except for ``NOT_IDEMPOTENT`` calls), and 429
    within the time left.

    ``retries=False`` for calls inside Slack's 3-second ack, where one attempt is all there is time for.
    """
    handlers: list[RetryHandler] = (
        [
            IdempotentConnectionErrorRetryHandler(max_retry_count=2),
            IdempotentServerErrorRetryHandler(max_retry_count=2),
            DeadlineAwareRateLimitRetryHandler(max_retry_count=3, seconds_left=seconds_left or (lambda: 30.0)),
        ]
        if retries
        else []
    )
    return WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=handlers)


class SlackChat:
    """Implements ``domain.ports.Chat``. Group members are cached for ``group_cache_seconds``.

    With a ``pacer``, every ``chat.postMessage`` (requests and thread replies alike) first waits for the
    channel's turn (adapters/pacing.py), so bursts of jobs stay within Slack's per-channel pace.
    """

    def __init__(
        self,
        client: WebClient | Callable[[], WebClient],
        group_cache_seconds: int = 300,
        clock: Callable[[], float] = time.monotonic,
        pacer: Pacer | None = None,
    ) -> None:
        self._pacer = pacer
        self._client = client if callable(client) and not isinstance(client, WebClient) else (lambda: client)
        self._cache_seconds = group_cache_seconds
        self._clock = clock
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._me: tuple[str | None, str | None] | None = None
        self._respond_timeout = 10

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        metadata: dict[str, Any] | None,
        thread_ts: str | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if metadata:
            kwargs["metadata"] = metadata
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if self._pacer is not None:
            self._pacer.wait_turn(channel)
        response = self._call("chat_postMessage", **kwargs)
        return str(response["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        # metadata is left out on purpose: leaving it out keeps the message's metadata.
        self._call("chat_update", channel=channel, ts=ts, text=text, blocks=blocks)

    def ephemeral(self, channel: str, user_id: str, text: str) -> None:
        self._call("chat_postEphemeral", channel=channel, user=user_id, text=text)

    def open_modal(self, trigger_id: str, view: dict[str, Any]) -> None:
        self._call("views_open", trigger_id=trigger_id, view=view)

    def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        """views.publish: the person's Home tab (``view`` of type home)."""
        self._call("views_publish", user_id=user_id, view=view)

    def respond(self, response_url: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """An ephemeral reply through a slash command's response_url (Slack allows 5 in 30 minutes).

        Sent once, without retries: a resent reply could count twice against those 5. The caller checked
        that the URL points at Slack (domain.home.response_url_allowed)."""
        from slack_sdk.webhook import WebhookClient

        client = WebhookClient(response_url, timeout=self._respond_timeout, retry_handlers=[])
        try:
            response = client.send(text=text, blocks=blocks, response_type="ephemeral")
        except (SlackClientError, OSError) as exc:
            raise ChatUnavailable(f"Slack response_url did not answer: {type(exc).__name__}") from exc
        if response.status_code != 200:
            body = str(response.body)[:100]
            raise ChatUnavailable(f"Slack response_url answered HTTP {response.status_code}: {body}")

    def group_members(self, group_id: str) -> frozenset[str]:
        cached = self.cached_group_members(group_id)
        if cached is not None:
            return cached
        response = self._call("usergroups_users_list", usergroup=group_id)
        members = frozenset(response.get("users") or [])
        self._groups[group_id] = (self._clock(), members)
        return members

    def display_name(self, user_id: str) -> str | None:
        """The person's display name (or real name) from users.info; None when Slack has neither."""
        profile = (self._call("users_info", user=user_id).get("user") or {}).get("profile") or {}
        return profile.get("display_name") or profile.get("real_name") or None

    def user_by_email(self, email: str) -> str | None:
        try:
            response = self._client().users_lookupByEmail(email=email)
        except SlackApiError as exc:
            if exc.response is not None and exc.response.get("error") == "users_not_found":
                return None
            raise self._unavailable("users_lookupByEmail", exc) from exc
        except (SlackClientError, OSError) as exc:
            raise self._unavailable("users_lookupByEmail", exc) from exc
        user = response.get("user") or {}
        return str(user["id"]) if user.get("id") and not user.get("deleted") else None

    def find_own_message(self, channel: str, since: datetime, metadata: dict[str, Any]) -> str | None:
        """Reads the channel's history back to ``since``, newest first, at most ``HISTORY_PAGES`` pages."""
        me = self._identity()
        wanted_type = metadata.get("event_type")
        wanted = dict(metadata.get("event_payload") or {})
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            kwargs: dict[str, Any] = {
                "channel": channel,
                "oldest": f"{since.timestamp():.6f}",
                "inclusive": True,
                "limit": HISTORY_PAGE_SIZE,
                "include_all_metadata": True,
            }
            if cursor:
                kwargs["cursor"] = cursor
            response = self._call("conversations_history", **kwargs)
            for found in response.get("messages") or []:
                if not self._posted_by(found, me):
                    continue
                meta = found.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == wanted_type and all(payload.get(k) == v for k, v in wanted.items()):
                    return str(found["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or not cursor:
                return None
        raise ChatUnavailable(
            f"Slack conversations.history: more than {HISTORY_PAGES * HISTORY_PAGE_SIZE} messages since "
            f"{since.isoformat()}; cannot tell whether the message was posted"
        )

    def _identity(self) -> tuple[str | None, str | None]:
        """This app's bot user ID and bot ID (auth.test, once per client)."""
        if self._me is None:
            response = self._call("auth_test")
            self._me = (response.get("user_id"), response.get("bot_id"))
        return self._me

    @staticmethod
    def _posted_by(found: dict[str, Any], me: tuple[str | None, str | None]) -> bool:
        user_id, bot_id = me
        return bool((bot_id and found.get("bot_id") == bot_id) or (user_id and found.get("user") == user_id))

    def cached_group_members(self, group_id: str) -> frozenset[str] | None:
        entry = self._groups.get(group_id)
        if entry is None or self._clock() - entry[0] > self._cache_seconds:
            return None
        return entry[1]

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client(), method)(**kwargs)
        except (SlackClientError, OSError) as exc:
            raise self._unavailable(method, exc) from exc

    @staticmethod
    def _unavailable(method: str, exc: Exception) -> ChatUnavailable:
        name = method.replace("_", ".", 1)
        if isinstance(exc, SlackApiError):
            error = exc.response.get("error", "unknown_error") if exc.response is not None else "unknown_error"
            return ChatUnavailable(f"Slack {name} failed: {error}")
        return ChatUnavailable(f"Slack {name} did not answer: {type(exc).__name__}")
