"""Slack Web API stand-in: the methods the approval loop calls, served over HTTP like slack.com/api.

Point `slack_sdk.WebClient(token=..., base_url=standin.url + "/api/")` at it. It accepts what
slack_sdk sends (JSON bodies, form bodies with `blocks`/`metadata`/`view` as JSON strings, multipart)
and the token as `Authorization: Bearer` or a `token` field, and answers with Slack's envelope:
HTTP 200 and `{"ok": true, ...}` or `{"ok": false, "error": ...}`, HTTP 429 when rate-limited.

Methods: chat.postMessage, chat.update, chat.postEphemeral, views.open, views.publish (Home tabs),
usergroups.users.list, users.info, users.lookupByEmail, conversations.history and auth.test. Errors
follow Slack's documented codes, e.g. `not_authed`, `invalid_auth`, `missing_scope` (with `needed` and `provided`),
`channel_not_found`, `not_in_channel`, `no_text`, `msg_too_long`, `invalid_blocks` (with Slack-style
`response_metadata.messages` naming the JSON pointer), `invalid_blocks_format` (blocks that are not a
JSON array), `message_not_found`, `cant_update_message`, `invalid_trigger_id`, `expired_trigger_id`,
`exchanged_trigger_id`, `invalid_arguments`, `no_such_subteam`, `user_not_found`, `users_not_found`,
`invalid_cursor`, `invalid_ts_oldest`, `invalid_ts_latest`.

Slack's side of the Events API and slash commands (the approver's queue): `app_home_opened_event()` and
`slash_command_form()` build what Slack sends, `send_event()` / `send_command()` sign it and POST it to
the app as strictly as Slack does (an answer later than 3 s, or not HTTP 200, is a failure; an event is
retried up to 3 times with `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`). A command's response_url
points back here (`/response/<id>`): replies are recorded as ephemerals for the person who ran it, at most
5 in 30 minutes per URL, as Slack allows. `views.publish` keeps each person's Home view (`home_view()`,
`render_home()`); `home_block_actions_payload()` is a click on a Home view's button.

The bot token carries OAuth scopes (by default the app manifest's bot scopes) and each method needs its
scope, as Slack enforces: chat:write for chat.*, usergroups:read, users:read, users:read.email for
users.lookupByEmail (and for `profile.email` in users.info), and channels:history / groups:history /
im:history for conversations.history in a public channel, a private channel or a DM.

State is a small workspace model (channels → messages with edits and thread replies, users, user
groups, ephemerals, views) that tests read through `.calls`, `messages()`, `message()`, `thread()`,
`ephemerals()` and `views()`. Faults: `rate_limit()`, `slow()` and `fail()`.

chat.postMessage is rate-limited per channel as Slack limits it (on by default; `rate_limits=False` turns it
off): a token bucket per conversation refilled at `POST_RATE_PER_SECOND` (1 message a second) and holding
`POST_BURST` tokens. Thread replies are chat.postMessage too and count against their channel. Beyond the
bucket the call is answered HTTP 429, `Retry-After: <whole seconds until a token, at least 1>` and
`{"ok": false, "error": "ratelimited"}`, and has no effect. `time_scale` shrinks Slack's clock for short tests
(see `SlackStandIn`); `rate_limited()` and `post_times()` count what the limit did.
"""

from __future__ import annotations

import base64
import binascii
import copy
import email.policy
import json
import math
import re
import secrets
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from infra.slack_manifest import BOT_SCOPES
from sandbox._http import LoopbackService

DEFAULT_CONFIG_TOKEN = "xoxe.xoxp-1-standin-config-token"
_DISPLAY_NAME = re.compile(r"^[a-z0-9._-]{1,80}$")
_COMMAND = re.compile(r"^/[a-z0-9_-]{1,31}$")
KNOWN_BOT_SCOPES = frozenset(
    [*BOT_SCOPES, "commands", "channels:read", "groups:read", "im:history", "im:read", "im:write", "mpim:history"]
)


def manifest_errors(manifest: Mapping[str, Any]) -> list[dict[str, str]]:
    """What Slack's manifest validation refuses, as its ``errors`` (message and JSON pointer), for the parts
    of a manifest this app writes: names, the bot's display name, scopes, and https Request URLs."""
    errors: list[dict[str, str]] = []

    def fail(pointer: str, message: str) -> None:
        errors.append({"message": message, "pointer": pointer})

    def at(path: str) -> Any:
        node: Any = manifest
        for part in path.strip("/").split("/"):
            node = node.get(part) if isinstance(node, Mapping) else None
        return node

    name = at("/display_information/name")
    if not isinstance(name, str) or not 1 <= len(name) <= 35:
        fail("/display_information/name", "must be a string of 1 to 35 characters")
    display = at("/features/bot_user/display_name")
    if display is not None and not (isinstance(display, str) and _DISPLAY_NAME.fullmatch(display)):
        fail(
            "/features/bot_user/display_name",
            "must be 80 characters or fewer of lowercase letters, numbers, periods, hyphens and underscores",
        )
    for index, scope in enumerate(at("/oauth_config/scopes/bot") or []):
        if scope not in KNOWN_BOT_SCOPES:
            fail(f"/oauth_config/scopes/bot/{index}", f"{scope!r} is not a valid bot scope")
    for pointer in ("/settings/interactivity/request_url", "/settings/event_subscriptions/request_url"):
        url = at(pointer)
        if url is not None and not (isinstance(url, str) and url.startswith("https://")):
            fail(pointer, "must be an https URL")
    for index, command in enumerate(at("/features/slash_commands") or []):
        if not isinstance(command, Mapping) or not _COMMAND.fullmatch(str(command.get("command", ""))):
            fail(f"/features/slash_commands/{index}/command", "must be a slash and up to 31 lowercase characters")
        elif not str(command.get("url", "")).startswith("https://"):
            fail(f"/features/slash_commands/{index}/url", "must be an https URL")
        elif not command.get("description"):
            fail(f"/features/slash_commands/{index}/description", "is required")
    return errors


__all__ = [
    "DEFAULT_BOT_TOKEN",
    "HISTORY_MAX_LIMIT",
    "METHOD_SCOPES",
    "Delivery",
    "Ephemeral",
    "Message",
    "OpenedView",
    "SlackCall",
    "SlackStandIn",
    "SlackUser",
    "block_kit_builder_url",
    "deliver",
    "validate_blocks",
    "validate_home_view",
]

DEFAULT_BOT_TOKEN = "xoxb-0000000000-0000000000000-standinstandinstandin00"

MAX_MESSAGE_BLOCKS = 50
HISTORY_DEFAULT_LIMIT = 100
HISTORY_MAX_LIMIT = 999
MAX_VIEW_BLOCKS = 100
# Events API: Slack waits 3 s for an HTTP 200, then retries up to 3 times (docs.slack.dev, Events API).
EVENT_ACK_SECONDS = 3.0
EVENT_RETRIES = 3
# response_url: "up to 5 times within 30 minutes" (docs.slack.dev, handling user interaction).
RESPONSE_URL_POSTS = 5
RESPONSE_URL_SECONDS = 30 * 60
MAX_TEXT = 40_000
TRIGGER_TTL_SECONDS = 3.0
# chat.postMessage: "1 per second [per channel]. Short bursts >1 allowed. If you attempt bursts, there is no
# guarantee that messages will be delivered" (docs.slack.dev/apis/web-api/rate-limits, "Posting messages").
# Slack documents no burst size; 3 is this stand-in's choice, small on purpose: a product that relies on
# more than a short burst fails here before it fails in Slack.
POST_RATE_PER_SECOND = 1.0
POST_BURST = 3
_TOKEN_EPSILON = 1e-6

_JSON_FIELDS = ("blocks", "attachments", "metadata", "view")
_TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
_SELECTS = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
_INTERACTIVE = _SELECTS | {
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "overflow",
    "radio_buttons",
    "timepicker",
    "workflow_button",
}
_INPUT_ELEMENTS = (_INTERACTIVE - {"button", "overflow", "workflow_button"}) | {
    "plain_text_input",
    "number_input",
    "email_text_input",
    "url_text_input",
    "rich_text_input",
    "file_input",
}
_ACCESSORIES = _INTERACTIVE | {"image"}
_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "context_actions",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)


# =============================================================================== Block Kit checks


def validate_blocks(blocks: Any, *, limit: int = MAX_MESSAGE_BLOCKS, pointer: str = "/blocks") -> list[str]:
    """Slack-style problems with `blocks` (empty when valid), e.g.
    `[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]`."""
    checker = _Checker()
    checker.blocks(blocks, pointer, limit)
    return checker.problems


def _validate_view(view: Any) -> list[str]:
    checker = _Checker()
    checker.view(view, "/view")
    return checker.problems


def validate_home_view(view: Any) -> list[str]:
    """Slack-style problems with a views.publish view (empty when valid): type home, at most 100 blocks."""
    checker = _Checker()
    checker.home_view(view, "/view")
    return checker.problems


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, pointer: str, message: str) -> None:
        self.problems.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def string(self, value: Any, pointer: str, limit: int, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(value, str):
            self.fail(pointer, "must be a string")
        elif len(value) > limit:
            self.fail(pointer, f"must be less than {limit + 1} characters")

    def text(self, obj: Any, pointer: str, limit: int, *, plain: bool = False, required: bool = True) -> None:
        if obj is None:
            if required:
                self.fail(pointer, "missing required field")
            return
        if not isinstance(obj, Mapping):
            self.fail(pointer, "must be an object")
            return
        allowed = {"plain_text"} if plain else _TEXT_TYPES
        if obj.get("type") not in allowed:
            self.fail(f"{pointer}/type", f"must be one of: {', '.join(sorted(allowed))}")
        value = obj.get("text")
        if not isinstance(value, str) or not value:
            self.fail(f"{pointer}/text", "must be more than 0 characters")
        elif len(value) > limit:
            self.fail(f"{pointer}/text", f"must be less than {limit + 1} characters")

    def confirm(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, Mapping):
            self.fail(pointer, "must be an object")
            return
        self.text(obj.get("title"), f"{pointer}/title", 100, plain=True)
        self.text(obj.get("text"), f"{pointer}/text", 300)
        self.text(obj.get("confirm"), f"{pointer}/confirm", 30, plain=True)
        self.text(obj.get("deny"), f"{pointer}/deny", 30, plain=True)
        if "style" in obj and obj["style"] not in ("primary", "danger"):
            self.fail(f"{pointer}/style", "must be one of: danger, primary")

    def options(self, options: Any, pointer: str, limit: int) -> None:
        if not isinstance(options, list) or not options:
            self.fail(pointer, "must provide at least 1 item")
            return
        if len(options) > limit:
            self.fail(pointer, f"no more than {limit} items allowed")
        for index, option in enumerate(options):
            where = f"{pointer}/{index}"
            if not isinstance(option, Mapping):
                self.fail(where, "must be an object")
                continue
            self.text(option.get("text"), f"{where}/text", 75)
            self.string(option.get("value"), f"{where}/value", 150, required=True)
            self.text(option.get("description"), f"{where}/description", 75, required=False)

    def element(self, element: Any, pointer: str, allowed: frozenset[str] | set[str]) -> None:
        if not isinstance(element, Mapping) or not isinstance(element.get("type"), str):
            self.fail(pointer, "must be an object with a type")
            return
        kind = element["type"]
        if kind not in allowed:
            self.fail(f"{pointer}/type", f"unsupported type `{kind}` here")
            return
        self.string(element.get("action_id"), f"{pointer}/action_id", 255)
        if "confirm" in element:
            self.confirm(element["confirm"], f"{pointer}/confirm")
        if kind == "button":
            self.text(element.get("text"), f"{pointer}/text", 75, plain=True)
            self.string(element.get("value"), f"{pointer}/value", 2000)
            self.string(element.get("url"), f"{pointer}/url", 3000)
            self.string(element.get("accessibility_label"), f"{pointer}/accessibility_label", 75)
            if "style" in element and element["style"] not in ("primary", "danger"):
                self.fail(f"{pointer}/style", "must be one of: danger, primary")
        elif kind == "image":
            if "image_url" not in element and "slack_file" not in element:
                self.fail(pointer, "must provide image_url or slack_file")
            self.string(element.get("image_url"), f"{pointer}/image_url", 3000)
            self.string(element.get("alt_text"), f"{pointer}/alt_text", 2000, required=True)
        elif kind in _SELECTS:
            self.text(element.get("placeholder"), f"{pointer}/placeholder", 150, plain=True, required=False)
            if kind in ("static_select", "multi_static_select") and "option_groups" not in element:
                self.options(element.get("options"), f"{pointer}/options", 100)
        elif kind == "overflow":
            self.options(element.get("options"), f"{pointer}/options", 5)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(element.get("options"), f"{pointer}/options", 10)
        elif kind == "plain_text_input":
            self.text(element.get("placeholder"), f"{pointer}/placeholder", 150, plain=True, required=False)
            self.string(element.get("initial_value"), f"{pointer}/initial_value", 3000)
            for name in ("min_length", "max_length"):
                value = element.get(name)
                if value is not None and (not isinstance(value, int) or not 0 <= value <= 3000):
                    self.fail(f"{pointer}/{name}", "must be between 0 and 3000")

    def blocks(self, blocks: Any, pointer: str, limit: int) -> None:
        if not isinstance(blocks, list):
            self.fail(pointer, "must be an array")
            return
        if len(blocks) > limit:
            self.fail(pointer, f"no more than {limit} items allowed")
        seen: set[str] = set()
        for index, block in enumerate(blocks):
            where = f"{pointer}/{index}"
            if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
                self.fail(where, "must be an object with a type")
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                self.string(block_id, f"{where}/block_id", 255)
                if block_id in seen:
                    self.fail(f"{where}/block_id", "duplicate block_id")
                seen.add(block_id)
            self.block(block, where)

    def block(self, block: Mapping[str, Any], pointer: str) -> None:
        kind = block["type"]
        if kind not in _BLOCK_TYPES:
            self.fail(f"{pointer}/type", f"unsupported type `{kind}`")
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                self.fail(pointer, "must provide text or fields")
            self.text(block.get("text"), f"{pointer}/text", 3000, required=False)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > 10:
                    self.fail(f"{pointer}/fields", "no more than 10 items allowed")
                else:
                    for index, item in enumerate(fields):
                        self.text(item, f"{pointer}/fields/{index}", 2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{pointer}/accessory", _ACCESSORIES)
        elif kind == "header":
            self.text(block.get("text"), f"{pointer}/text", 150, plain=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                self.fail(f"{pointer}/elements", "must provide between 1 and 10 items")
                return
            for index, item in enumerate(elements):
                where = f"{pointer}/elements/{index}"
                if isinstance(item, Mapping) and item.get("type") == "image":
                    self.element(item, where, {"image"})
                else:
                    self.text(item, where, 3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                self.fail(f"{pointer}/elements", "must provide between 1 and 25 items")
                return
            for index, item in enumerate(elements):
                self.element(item, f"{pointer}/elements/{index}", _INTERACTIVE)
        elif kind == "image":
            self.element({**block, "type": "image"}, pointer, {"image"})
            self.text(block.get("title"), f"{pointer}/title", 2000, plain=True, required=False)
        elif kind == "input":
            self.text(block.get("label"), f"{pointer}/label", 2000, plain=True)
            self.text(block.get("hint"), f"{pointer}/hint", 2000, plain=True, required=False)
            if "element" not in block:
                self.fail(f"{pointer}/element", "missing required field")
            else:
                self.element(block["element"], f"{pointer}/element", _INPUT_ELEMENTS)
        elif kind == "markdown":
            self.string(block.get("text"), f"{pointer}/text", 12_000, required=True)

    def home_view(self, view: Any, pointer: str) -> None:
        if not isinstance(view, Mapping):
            self.fail(pointer, "must be an object")
            return
        if view.get("type") != "home":
            self.fail(f"{pointer}/type", "must be `home`")
        self.string(view.get("private_metadata"), f"{pointer}/private_metadata", 3000)
        self.string(view.get("callback_id"), f"{pointer}/callback_id", 255)
        self.string(view.get("external_id"), f"{pointer}/external_id", 255)
        if view.get("blocks") is None:
            self.fail(f"{pointer}/blocks", "missing required field")
            return
        self.blocks(view["blocks"], f"{pointer}/blocks", MAX_VIEW_BLOCKS)
        if any(isinstance(b, Mapping) and b.get("type") == "input" for b in view["blocks"] or []):
            self.fail(f"{pointer}/blocks", "input blocks are not allowed in a Home tab")

    def view(self, view: Any, pointer: str) -> None:
        if not isinstance(view, Mapping):
            self.fail(pointer, "must be an object")
            return
        if view.get("type") != "modal":
            self.fail(f"{pointer}/type", "must be `modal`")
        self.text(view.get("title"), f"{pointer}/title", 24, plain=True)
        self.text(view.get("submit"), f"{pointer}/submit", 24, plain=True, required=False)
        self.text(view.get("close"), f"{pointer}/close", 24, plain=True, required=False)
        self.string(view.get("private_metadata"), f"{pointer}/private_metadata", 3000)
        self.string(view.get("callback_id"), f"{pointer}/callback_id", 255)
        self.string(view.get("external_id"), f"{pointer}/external_id", 255)
        blocks = view.get("blocks")
        if blocks is None:
            self.fail(f"{pointer}/blocks", "missing required field")
            return
        self.blocks(blocks, f"{pointer}/blocks", MAX_VIEW_BLOCKS)
        has_input = isinstance(blocks, list) and any(
            isinstance(block, Mapping) and block.get("type") == "input" for block in blocks
        )
        if has_input and "submit" not in view:
            self.fail(f"{pointer}/submit", "must provide submit when the view has input blocks")


# =============================================================================== the model


@dataclass
class SlackUser:
    id: str
    name: str
    real_name: str = ""
    display_name: str = ""
    is_bot: bool = False
    deleted: bool = False
    tz: str = "Europe/London"
    email: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, value: SlackUser | Mapping[str, Any]) -> SlackUser:
        if isinstance(value, SlackUser):
            return value
        known = {"id", "name", "real_name", "display_name", "is_bot", "deleted", "tz", "email"}
        return cls(
            **{key: value[key] for key in known if key in value},
            extra={key: item for key, item in value.items() if key not in known},
        )

    def to_api(self, team_id: str, *, with_email: bool = False) -> dict[str, Any]:
        """The user object; `profile.email` only when asked (Slack shows it to users:read.email tokens)."""
        real_name = self.real_name or self.name
        body = {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": self.tz,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {
                "real_name": real_name,
                "real_name_normalized": real_name,
                "display_name": self.display_name,
                "display_name_normalized": self.display_name,
                "team": team_id,
            },
            **self.extra,
        }
        if with_email and self.email:
            body["profile"]["email"] = self.email
        return body


@dataclass
class _Channel:
    id: str
    name: str
    members: set[str] | None = None
    is_private: bool = False

    @property
    def history_scope(self) -> str:
        """The scope conversations.history needs here: DMs, private channels and public ones differ."""
        if self.id.startswith("D"):
            return "im:history"
        return "groups:history" if self.is_private else "channels:history"


@dataclass
class Message:
    """A message as the stand-in holds it. `edits` keeps every earlier version, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None
    user: str
    bot_id: str | None = None
    thread_ts: str | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    app_id: str | None = None
    reply_users: list[str] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return bool(self.thread_ts) and self.thread_ts != self.ts

    @property
    def edited(self) -> bool:
        return bool(self.edits)

    def buttons(self) -> list[dict[str, Any]]:
        """Every button in the message, with its `block_id` added."""
        found = []
        for block in self.blocks or []:
            elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory")]
            for element in elements:
                if isinstance(element, Mapping) and element.get("type") == "button":
                    found.append({**element, "block_id": block.get("block_id")})
        return found

    def to_api(self, team_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "message", "user": self.user, "ts": self.ts, "text": self.text, "team": team_id}
        if self.bot_id:
            body["bot_id"] = self.bot_id
        if self.app_id:
            body["app_id"] = self.app_id
        if self.blocks is not None:
            body["blocks"] = copy.deepcopy(self.blocks)
        if self.metadata:
            body["metadata"] = copy.deepcopy(self.metadata)
        if self.thread_ts:
            body["thread_ts"] = self.thread_ts
        if self.replies:
            body.update(
                reply_count=len(self.replies),
                reply_users_count=len(self.reply_users),
                reply_users=list(self.reply_users),
                latest_reply=self.replies[-1],
            )
        return body


@dataclass(frozen=True)
class Ephemeral:
    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None


@dataclass
class _ResponseUrl:
    user: str
    channel: str | None
    issued: float
    posts: int = 0


@dataclass(frozen=True)
class Delivery:
    """One request Slack sent the app: what came back, how fast, and whether Slack counts it as received."""

    status: int | None  # None: no answer within the wait (or no connection)
    body: str
    seconds: float
    retry_num: int = 0

    @property
    def acknowledged(self) -> bool:
        return self.status == 200 and self.seconds <= EVENT_ACK_SECONDS

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class OpenedView:
    id: str
    user: str | None
    trigger_id: str
    view: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.view.get("title", {}).get("text", ""))

    @property
    def private_metadata(self) -> str:
        return str(self.view.get("private_metadata", ""))

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id", ""))


@dataclass(frozen=True)
class SlackCall:
    """One API call: the method, its decoded arguments, when it arrived, and what was answered."""

    method: str
    params: dict[str, Any]
    time: float
    status: int
    response: dict[str, Any]
    token: str | None = None
    content_type: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass
class _Fault:
    kind: str  # "rate_limit", "fail" or "slow"
    method: str
    remaining: int | None
    error: str = ""
    retry_after: int = 1
    seconds: float = 0.0

    def applies_to(self, method: str) -> bool:
        return self.method in ("*", method) and (self.remaining is None or self.remaining > 0)

    def use(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


@dataclass
class _Bucket:
    """One conversation's chat.postMessage tokens, as of `updated` (by the stand-in's clock)."""

    tokens: float
    updated: float


class _RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("ratelimited")
        self.retry_after = retry_after


@dataclass
class _Trigger:
    issued: float
    user: str | None
    used: bool = False


class _ApiError(Exception):
    def __init__(self, error: str, messages: list[str] | None = None, **fields: Any) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        self.fields = fields


# The scope each method needs (None: none beyond a valid token). conversations.history depends on the
# kind of conversation and is checked in the method.
METHOD_SCOPES: dict[str, str | None] = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "views.open": None,
    "views.publish": None,
    "usergroups.users.list": "usergroups:read",
    "users.info": "users:read",
    "users.lookupByEmail": "users:read.email",
}


# =============================================================================== the stand-in


class SlackStandIn(LoopbackService):
    """A Slack workspace and Web API on a loopback port.

    `users`: SlackUser or dicts with id, name, real_name, display_name (is_bot, deleted, tz, email optional).
    `groups`: user-group id → member user ids. `channels`: ids, or dicts with id, name, optional
    members (when given, ephemerals to non-members fail with `user_not_in_channel`, and the bot must be
    one of them to read the history) and optional is_private. `scopes`: the bot token's OAuth scopes
    (default: the manifest's `BOT_SCOPES`). `clock` is the wall clock used for ts values and trigger
    expiry; pass your own to move time in tests.

    Rate limits: `rate_limits` (default True, as Slack) limits chat.postMessage per channel to `post_rate`
    messages a Slack second with a bucket of `post_burst` (see `POST_BURST`). `time_scale` is how many
    seconds of `clock` one Slack second lasts: `time_scale=0.05` refills a token every 0.05 s. It applies to
    the refill only; Retry-After stays whole Slack seconds, as the protocol has it, so a client that sleeps
    Retry-After waits longer than the scaled bucket needs (never shorter). ts values and trigger expiry
    keep to `clock` unscaled. `rate_limits`, `time_scale` and the bucket figures may be changed while
    serving; a change applies from the next call.
    """

    thread_name = "slack-standin"

    def __init__(
        self,
        bot_token: str = DEFAULT_BOT_TOKEN,
        *,
        users: Iterable[SlackUser | Mapping[str, Any]] = (),
        groups: Mapping[str, Iterable[str]] | None = None,
        channels: Iterable[str | Mapping[str, Any]] = (),
        team_id: str = "T0STANDIN",
        team_name: str = "standin",
        bot_user_id: str = "U0STANDINBOT",
        bot_id: str = "B0STANDINBOT",
        app_id: str = "A0STANDINAPP",
        trigger_ttl_seconds: float = TRIGGER_TTL_SECONDS,
        scopes: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
        rate_limits: bool = True,
        time_scale: float = 1.0,
        post_rate: float = POST_RATE_PER_SECOND,
        post_burst: int = POST_BURST,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if time_scale <= 0 or post_rate <= 0 or post_burst < 1:
            raise ValueError("time_scale and post_rate must be positive and post_burst at least 1")
        self.bot_token = bot_token
        # An app configuration token (api.slack.com/apps → Your App Configuration Tokens): the only token the
        # apps.manifest.* methods take, as in Slack; apps made with it, by app ID.
        self.config_token = DEFAULT_CONFIG_TOKEN
        self.apps: dict[str, dict[str, Any]] = {}
        self.scopes: frozenset[str] = frozenset(BOT_SCOPES if scopes is None else scopes)
        self.team_id = team_id
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.trigger_ttl_seconds = trigger_ttl_seconds
        self.clock = clock
        self._lock = threading.RLock()
        self._users: dict[str, SlackUser] = {}
        self._groups: dict[str, list[str]] = {}
        self._channels: dict[str, _Channel] = {}
        self._messages: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[Ephemeral] = []
        self._views: list[OpenedView] = []
        self._home_views: dict[str, dict[str, Any]] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._calls: list[SlackCall] = []
        self._faults: list[_Fault] = []
        self._last_ts_micros = 0
        self.rate_limits = rate_limits
        self.time_scale = time_scale
        self.post_rate = post_rate
        self.post_burst = post_burst
        self._buckets: dict[str, _Bucket] = {}
        self._rate_limited: dict[str, int] = {}
        self._post_times: dict[str, list[float]] = {}
        for user in users:
            self.add_user(user)
        for group_id, members in (groups or {}).items():
            self.add_group(group_id, members)
        for channel in channels:
            if isinstance(channel, str):
                self.add_channel(channel)
            else:
                self.add_channel(
                    channel["id"],
                    name=channel.get("name"),
                    members=channel.get("members"),
                    is_private=bool(channel.get("is_private", False)),
                )
        super().__init__(host, port, _make_handler(self))

    @property
    def api_url(self) -> str:
        """What to pass as `base_url` (SLACK_API_URL): `http://127.0.0.1:PORT/api/`."""
        return f"{self.url}/api/"

    # ------------------------------------------------------------------ workspace set-up

    def add_user(self, user: SlackUser | Mapping[str, Any]) -> SlackUser:
        slack_user = SlackUser.of(user)
        with self._lock:
            self._users[slack_user.id] = slack_user
        return slack_user

    def add_group(self, group_id: str, members: Iterable[str]) -> None:
        with self._lock:
            self._groups[group_id] = list(members)

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        members: Iterable[str] | None = None,
        is_private: bool = False,
    ) -> None:
        with self._lock:
            self._channels[channel_id] = _Channel(
                channel_id, name or channel_id.lower(), set(members) if members is not None else None, is_private
            )

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        bot_id: str | None = None,
        app_id: str | None = None,
    ) -> Message:
        """Seed a message written by someone else (a person, or another app when `bot_id`/`app_id` are
        given): the bot cannot chat.update it."""
        with self._lock:
            found = self._channel(channel)
            if found is None:
                raise KeyError(f"unknown channel {channel!r}")
            stored = self._store_message(found.id, text, blocks, copy.deepcopy(metadata), user, bot_id, thread_ts)
            stored.app_id = app_id
            return stored

    def issue_trigger_id(self, user: str | None = None) -> str:
        """A trigger_id as Slack puts in an interaction payload: usable once, for `trigger_ttl_seconds`."""
        trigger_id = f"{secrets.randbelow(10**13):013d}.{secrets.randbelow(10**12):012d}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger_id] = _Trigger(self.clock(), user)
        return trigger_id

    def block_actions_payload(
        self,
        channel: str,
        ts: str,
        action_id: str,
        *,
        user: str,
        response_url: str = "https://hooks.slack.com/actions/T0STANDIN/1/standin",
    ) -> dict[str, Any]:
        """The `block_actions` payload Slack sends when `user` clicks the button `action_id` on a message.

        It carries a fresh trigger_id. Form-encode it as `payload=<json>` to post it to an interactivity URL.
        """
        stored = self.message(channel, ts)
        button = next((b for b in stored.buttons() if b.get("action_id") == action_id), None)
        if button is None:
            raise KeyError(f"no button with action_id {action_id!r} in message {ts}")
        person = self._users.get(user)
        name = person.name if person else user
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": button["block_id"],
            "text": button["text"],
            "action_ts": self._next_ts(),
        }
        for key in ("value", "style"):
            if key in button:
                action[key] = button[key]
        return {
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": "verification-token-deprecated",
            "container": {"type": "message", "message_ts": ts, "channel_id": stored.channel, "is_ephemeral": False},
            "trigger_id": self.issue_trigger_id(user),
            "team": {"id": self.team_id, "domain": self.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": stored.channel, "name": self._channels[stored.channel].name},
            "message": stored.to_api(self.team_id),
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }

    # ------------------------------------------------------------------ the Events API and slash commands

    def home_view(self, user: str) -> dict[str, Any] | None:
        """The Home view last published for `user` (views.publish), or None."""
        with self._lock:
            view = self._home_views.get(user)
            return copy.deepcopy(view) if view is not None else None

    def render_home(self, user: str) -> str:
        """A terminal rendering of `user`'s Home tab."""
        view = self.home_view(user)
        if view is None:
            return f"(no Home view published for {user})"
        lines = [f"Home tab of {user}"]
        for block in view.get("blocks", []):
            lines.extend(f"│ {line}".rstrip() for line in _render_block(block))
        lines.append("└" + "─" * (_WIDTH + 1))
        return "\n".join(lines)

    @staticmethod
    def render_ephemeral(ephemeral: Ephemeral) -> str:
        """An ephemeral (or a response_url reply) as a terminal shows it: its blocks, else its text."""
        if not ephemeral.blocks:
            return ephemeral.text
        return "\n".join(line for block in ephemeral.blocks for line in _render_block(block))

    def app_home_opened_event(self, user: str, *, tab: str = "home") -> dict[str, Any]:
        """The Events API envelope Slack sends when `user` opens the app's Home (or Messages) tab."""
        now = self.clock()
        view = self._home_views.get(user)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": "D" + user[1:],
            "tab": tab,
            "event_ts": f"{now:.6f}",
        }
        if view is not None:
            event["view"] = {"id": view["id"], "type": "home", "team_id": self.team_id}
        return {
            "token": "verification-token-deprecated",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(6).upper(),
            "event_time": int(now),
            "authorizations": [{"team_id": self.team_id, "user_id": self.bot_user_id, "is_bot": True}],
            "is_ext_shared_channel": False,
        }

    def issue_response_url(self, user: str, channel: str | None = None) -> str:
        """A response_url as a slash command carries, pointing back at this stand-in (5 posts, 30 minutes)."""
        key = secrets.token_hex(8)
        with self._lock:
            self._response_urls[key] = _ResponseUrl(user, channel, self.clock())
        return f"{self.url}/response/{self.team_id}/{key}"

    def slash_command_form(
        self, command: str, text: str, *, user: str, channel: str = "C0APPROVALS", response_url: str | None = None
    ) -> dict[str, str]:
        """The form fields Slack posts when `user` runs `command text` in `channel`."""
        person = self._users.get(user)
        return {
            "token": "verification-token-deprecated",
            "team_id": self.team_id,
            "team_domain": self.team_name,
            "channel_id": channel,
            "channel_name": self._channels[channel].name if channel in self._channels else channel.lower(),
            "user_id": user,
            "user_name": person.name if person else user,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url or self.issue_response_url(user, channel),
            "trigger_id": self.issue_trigger_id(user),
        }

    def send_event(
        self, url: str, envelope: dict[str, Any], signing_secret: str, *, retries: int = EVENT_RETRIES
    ) -> list[Delivery]:
        """POST the event to the app as Slack does: signed, waiting at most 3 s; a delivery that is not an
        HTTP 200 within them is retried (up to `retries` times) with X-Slack-Retry-Num / -Reason."""
        body = json.dumps(envelope)
        deliveries: list[Delivery] = []
        for attempt in range(retries + 1):
            headers = {}
            if attempt:
                last = deliveries[-1]
                headers = {
                    "X-Slack-Retry-Num": str(attempt),
                    "X-Slack-Retry-Reason": "http_timeout" if last.status is None else "http_error",
                }
            delivery = deliver(url, body, "application/json", signing_secret, headers=headers, clock=self.clock)
            deliveries.append(Delivery(delivery.status, delivery.body, delivery.seconds, attempt))
            if delivery.acknowledged:
                break
        return deliveries

    def send_command(self, url: str, form: dict[str, str], signing_secret: str) -> Delivery:
        """POST a slash command as Slack does (signed, 3 s, never retried)."""
        return deliver(url, urlencode(form), "application/x-www-form-urlencoded", signing_secret, clock=self.clock)

    def home_block_actions_payload(self, user: str, job_id: str, action_id: str) -> dict[str, Any]:
        """The `block_actions` payload of a click on a button of `user`'s Home view: `container.type` is
        "view", and there is no `channel` or `message`, as Slack sends it."""
        with self._lock:
            view = self._home_views.get(user)
            if view is None:
                raise KeyError(f"no Home view published for {user}")
            view = copy.deepcopy(view)
        for block in view.get("blocks", []):
            if block.get("type") != "actions":
                continue
            for button in block.get("elements", []):
                if button.get("action_id") == action_id and job_id in str(button.get("value", "")):
                    break
            else:
                continue
            break
        else:
            raise KeyError(f"no {action_id!r} button for job {job_id} in the Home view of {user}")
        person = self._users.get(user)
        name = person.name if person else user
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": block.get("block_id"),
            "text": button["text"],
            "value": button.get("value"),
            "action_ts": self._next_ts(),
        }
        if "style" in button:
            action["style"] = button["style"]
        return {
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": "verification-token-deprecated",
            "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": self.issue_trigger_id(user),
            "team": {"id": self.team_id, "domain": self.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": {**view, "state": {"values": {}}, "hash": "h"},
            "actions": [action],
        }

    def _handle_response_url(self, path: str, content_type: str, raw: bytes) -> tuple[int, str]:
        """A post to a response_url: recorded as an ephemeral for the person who ran the command."""
        key = path.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            entry = self._response_urls.get(key)
            if entry is None:
                return 404, "invalid_url"
            if self.clock() - entry.issued > RESPONSE_URL_SECONDS:
                return 404, "expired_url"
            if entry.posts >= RESPONSE_URL_POSTS:
                return 404, "used_url"
            try:
                params = _decode_json_fields(_parse_body(content_type, raw))
            except _ApiError as problem:
                return 400, problem.error
            try:
                text, blocks = self._content(params, required=True)
            except _ApiError as problem:
                return 400, problem.error
            entry.posts += 1
            channel = entry.channel or "D" + entry.user[1:]
            if params.get("response_type") == "in_channel" and entry.channel in self._channels:
                self._store_message(entry.channel, text, blocks, None, self.bot_user_id, self.bot_id, None)
            else:
                self._ephemerals.append(Ephemeral(channel, entry.user, self._next_ts(), text, blocks))
            self._calls.append(SlackCall("response_url", params, self.clock(), 200, {"ok": True}, None, content_type))
        return 200, "ok"

    # ------------------------------------------------------------------ faults

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls to `method` ("*" = any) with HTTP 429, Retry-After and `ratelimited`."""
        with self._lock:
            self._faults.append(_Fault("rate_limit", method, times, retry_after=retry_after))

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """Answer the next `times` calls to `method` with `{"ok": false, "error": error}`."""
        with self._lock:
            self._faults.append(_Fault("fail", method, times, error=error))

    def slow(self, method: str, seconds: float, times: int | None = None) -> None:
        """Delay answers to `method` by `seconds` (every call, or the next `times` calls)."""
        with self._lock:
            self._faults.append(_Fault("slow", method, times, seconds=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ------------------------------------------------------------------ what tests read

    @property
    def calls(self) -> list[SlackCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages in `channel` (id or name), oldest first; thread replies are in `thread()`."""
        with self._lock:
            found = self._channel(channel)
            if found is None:
                raise KeyError(f"unknown channel {channel!r}")
            return [m for (cid, _), m in self._messages.items() if cid == found.id and m.thread_ts in (None, m.ts)]

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            found = self._channel(channel)
            stored = self._messages.get((found.id, ts)) if found else None
            if stored is None:
                raise KeyError(f"no message {ts} in {channel!r}")
            return stored

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The replies under the message `ts` (the parent itself excluded), oldest first."""
        with self._lock:
            parent = self.message(channel, ts)
            return [self._messages[(parent.channel, reply)] for reply in parent.replies]

    def ephemerals(self, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            return [e for e in self._ephemerals if user is None or e.user == user]

    def views(self) -> list[OpenedView]:
        with self._lock:
            return list(self._views)

    def rate_limited(self, channel: str | None = None) -> int:
        """How many chat.postMessage calls the per-channel limit answered with 429 (in `channel`, or in all);
        faults injected with `rate_limit()` are not counted here."""
        with self._lock:
            if channel is None:
                return sum(self._rate_limited.values())
            found = self._channel(channel)
            return self._rate_limited.get(found.id if found else channel, 0)

    def post_times(self, channel: str) -> list[float]:
        """When (by `clock`) each chat.postMessage the limit let through in `channel` arrived, oldest first;
        thread replies included."""
        with self._lock:
            found = self._channel(channel)
            return list(self._post_times.get(found.id if found else channel, []))

    def __len__(self) -> int:
        return len(self.calls)

    # ------------------------------------------------------------------ rendering

    @staticmethod
    def block_kit_builder_url(blocks: list[dict[str, Any]]) -> str:
        return block_kit_builder_url(blocks)

    def render_message(self, channel: str, ts: str) -> str:
        """A terminal rendering of a message: header, sections and fields, context, dividers and buttons."""
        with self._lock:
            stored = self.message(channel, ts)
            replies = len(stored.replies)
            name = self._channels[stored.channel].name
        return _render(stored, name, replies)

    # ------------------------------------------------------------------ the API

    def _handle_api(
        self, method: str, params: dict[str, Any], token: str | None, content_type: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one call: (HTTP status, body, extra headers). Slow faults sleep outside the lock."""
        delay = 0.0
        with self._lock:
            for fault in self._faults:
                if fault.kind == "slow" and fault.applies_to(method):
                    fault.use()
                    delay += fault.seconds
        if delay:
            time.sleep(delay)
        decoded = _decode_json_fields(params)
        headers: dict[str, str] = {}
        with self._lock:
            status, body = 200, self._answer(method, decoded, token, headers)
            if body.get("error") == "ratelimited":
                status = 429
            self._calls.append(SlackCall(method, decoded, self.clock(), status, body, token, content_type))
        return status, body, headers

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        try:
            if not token:
                raise _ApiError("not_authed")
            if method.startswith("apps.manifest."):
                if token == self.bot_token:
                    raise _ApiError("not_allowed_token_type")
                if token != self.config_token:
                    raise _ApiError("invalid_auth")
                return {"ok": True, **self._manifest_methods()[method](params)}
            if token != self.bot_token:
                raise _ApiError("invalid_auth")
            for fault in self._faults:
                if fault.kind != "slow" and fault.applies_to(method):
                    fault.use()
                    if fault.kind == "rate_limit":
                        headers["Retry-After"] = str(fault.retry_after)
                        raise _ApiError("ratelimited")
                    raise _ApiError(fault.error)
            implementation = self._methods().get(method)
            if implementation is None:
                raise _ApiError("unknown_method")
            needed = METHOD_SCOPES.get(method)
            if needed is not None:
                self._require_scope(needed)
            return {"ok": True, **implementation(params)}
        except _RateLimited as limited:
            headers["Retry-After"] = str(limited.retry_after)
            return {"ok": False, "error": "ratelimited"}
        except _ApiError as problem:
            body: dict[str, Any] = {"ok": False, "error": problem.error, **problem.fields}
            if problem.messages:
                body["response_metadata"] = {"messages": problem.messages}
            return body

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "usergroups.users.list": self._usergroup_users,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "conversations.history": self._conversations_history,
        }

    # -- apps.manifest.* (an app configuration token) ---------------------------------------------

    def _manifest_methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "apps.manifest.validate": self._manifest_validate,
            "apps.manifest.create": self._manifest_create,
            "apps.manifest.update": self._manifest_update,
        }

    def _manifest_of(self, params: dict[str, Any]) -> dict[str, Any]:
        """The ``manifest`` argument (JSON text, or already decoded), checked as Slack checks it."""
        raw = params.get("manifest")
        if raw is None:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: manifest"])
        manifest = raw
        if isinstance(raw, str):
            try:
                manifest = json.loads(raw)
            except ValueError:
                raise _ApiError("invalid_manifest", errors=[{"message": "not valid JSON", "pointer": "/"}]) from None
        if not isinstance(manifest, dict):
            raise _ApiError("invalid_manifest", errors=[{"message": "must be an object", "pointer": "/"}])
        errors = manifest_errors(manifest)
        if errors:
            raise _ApiError("invalid_manifest", errors=errors)
        return manifest

    def _manifest_validate(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("app_id") and params["app_id"] not in self.apps:
            raise _ApiError("invalid_app_id")
        self._manifest_of(params)
        return {}

    def _manifest_create(self, params: dict[str, Any]) -> dict[str, Any]:
        manifest = self._manifest_of(params)
        app_id = f"A0STANDIN{len(self.apps) + 1:03d}"
        self.apps[app_id] = manifest
        return {
            "app_id": app_id,
            "credentials": {
                "client_id": f"{self.team_id}.{app_id}",
                "client_secret": secrets.token_hex(16),
                "verification_token": secrets.token_hex(12),
                "signing_secret": secrets.token_hex(16),
            },
            "oauth_authorize_url": f"https://slack.com/oauth/v2/authorize?client_id={self.team_id}.{app_id}",
        }

    def _manifest_update(self, params: dict[str, Any]) -> dict[str, Any]:
        app_id = params.get("app_id")
        if not app_id:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: app_id"])
        if app_id not in self.apps:
            raise _ApiError("invalid_app_id")
        manifest = self._manifest_of(params)
        before = self.apps[app_id].get("oauth_config", {}).get("scopes", {})
        self.apps[app_id] = manifest
        return {"app_id": app_id, "permissions_updated": manifest.get("oauth_config", {}).get("scopes", {}) != before}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_name}.slack.com/",
            "team": self.team_name,
            "user": "approvals",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(params)
        self._take_post_token(channel.id)
        text, blocks = self._content(params, required=True)
        metadata = _metadata(params.get("metadata"), allow_empty=False)
        thread_ts = params.get("thread_ts") or None
        stored = self._store_message(channel.id, text, blocks, metadata, self.bot_user_id, self.bot_id, thread_ts)
        stored.app_id = self.app_id
        return {"channel": channel.id, "ts": stored.ts, "message": stored.to_api(self.team_id)}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(params)
        stored = self._messages.get((channel.id, str(params.get("ts") or "")))
        if stored is None:
            raise _ApiError("message_not_found")
        if stored.user != self.bot_user_id:
            raise _ApiError("cant_update_message")
        if not any(params.get(key) is not None for key in ("text", "blocks", "attachments")):
            raise _ApiError("no_text")
        text, blocks = self._content(params, required=False)
        metadata = _metadata(params.get("metadata"), allow_empty=True) if "metadata" in params else stored.metadata
        stored.edits.append(
            {
                "text": stored.text,
                "blocks": copy.deepcopy(stored.blocks),
                "metadata": copy.deepcopy(stored.metadata),
                "replaced_at": self.clock(),
            }
        )
        if "text" in params:
            stored.text = text
        if "blocks" in params:
            stored.blocks = blocks or None
        stored.metadata = metadata or None
        return {"channel": channel.id, "ts": stored.ts, "text": stored.text, "message": stored.to_api(self.team_id)}

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._require_channel(params)
        user = params.get("user")
        if not user:
            raise _ApiError("user_not_found")
        if self._users and user not in self._users:
            raise _ApiError("user_not_found")
        if channel.members is not None and user not in channel.members:
            raise _ApiError("user_not_in_channel")
        text, blocks = self._content(params, required=True)
        ts = self._next_ts()
        self._ephemerals.append(Ephemeral(channel.id, user, ts, text, blocks, params.get("thread_ts") or None))
        return {"message_ts": ts}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger_id = params.get("trigger_id")
        if not trigger_id:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if trigger.used:
            raise _ApiError("exchanged_trigger_id")
        if self.clock() - trigger.issued > self.trigger_ttl_seconds:
            raise _ApiError("expired_trigger_id")
        view = params.get("view")
        if isinstance(view, _Undecodable):
            raise _ApiError("invalid_arguments", ["[ERROR] view must be a JSON object [json-pointer:/view]"])
        problems = _validate_view(view)
        if problems:
            raise _ApiError("invalid_arguments", problems)
        trigger.used = True
        view_id = "V" + secrets.token_hex(5).upper()
        opened = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            **copy.deepcopy(view),
            "state": {"values": {}},
            "hash": f"{int(self.clock())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
        }
        self._views.append(OpenedView(view_id, trigger.user, str(trigger_id), opened))
        return {"view": opened}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user_id") or "")
        if not user:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: user_id"])
        if self._users and user not in self._users:
            raise _ApiError("user_not_found")
        view = params.get("view")
        if isinstance(view, _Undecodable):
            raise _ApiError("invalid_arguments", ["[ERROR] view must be a JSON object [json-pointer:/view]"])
        problems = validate_home_view(view)
        if problems:
            raise _ApiError("invalid_arguments", problems)
        view_id = "V" + secrets.token_hex(5).upper()
        published = {"id": view_id, "team_id": self.team_id, "app_id": self.app_id, **copy.deepcopy(view)}
        self._home_views[user] = published
        return {"view": published}

    def _usergroup_users(self, params: dict[str, Any]) -> dict[str, Any]:
        group = params.get("usergroup")
        if not group:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: usergroup"])
        if group not in self._groups:
            raise _ApiError("no_such_subteam")
        return {"users": list(self._groups[group])}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(params.get("user") or ""))
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": user.to_api(self.team_id, with_email="users:read.email" in self.scopes)}

    def _users_lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").strip()
        if not email:
            raise _ApiError("invalid_arguments", ["[ERROR] missing required field: email"])
        wanted = email.casefold()
        found = next((u for u in self._users.values() if u.email and u.email.casefold() == wanted), None)
        if found is None:
            raise _ApiError("users_not_found")
        return {"user": found.to_api(self.team_id, with_email=True)}

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages and thread parents, newest first, a page at a time (Slack's cursor paging)."""
        channel = self._channels.get(str(params.get("channel") or ""))
        if channel is None:  # only a conversation ID works here, not a name or a user ID
            raise _ApiError("channel_not_found")
        self._require_scope(channel.history_scope)
        if channel.members is not None and self.bot_user_id not in channel.members:
            raise _ApiError("not_in_channel")
        oldest = _ts_bound(params.get("oldest"), "invalid_ts_oldest")
        latest = _ts_bound(params.get("latest"), "invalid_ts_latest")
        inclusive = _flag(params.get("inclusive"))
        with_metadata = _flag(params.get("include_all_metadata"))
        limit = _history_limit(params.get("limit"))
        start = _read_cursor(params.get("cursor"))

        def wanted(micros: int) -> bool:
            if oldest is not None and not (micros > oldest or (inclusive and micros == oldest)):
                return False
            if latest is not None and not (micros < latest or (inclusive and micros == latest)):
                return False
            return start is None or micros <= start

        found = sorted(
            (
                (_ts_micros(m.ts), m)
                for m in self._messages.values()
                if m.channel == channel.id and not m.is_reply and wanted(_ts_micros(m.ts))
            ),
            key=lambda pair: pair[0],
            reverse=True,
        )
        page = found[:limit]
        messages = []
        for _, stored in page:
            item = stored.to_api(self.team_id)
            if not with_metadata:
                item.pop("metadata", None)
            messages.append(item)
        body: dict[str, Any] = {
            "messages": messages,
            "has_more": len(found) > limit,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if len(found) > limit:
            body["response_metadata"] = {"next_cursor": _make_cursor(found[limit][0])}
        return body

    # ------------------------------------------------------------------ helpers (hold the lock)

    def _take_post_token(self, channel_id: str) -> None:
        """Spend one of the channel's tokens, or raise `_RateLimited` and change nothing else.

        A call counts once it names a conversation that exists, whatever happens to it after (Slack limits
        calls, and says nothing of refunding failed ones)."""
        now = self.clock()
        if not self.rate_limits:
            self._post_times.setdefault(channel_id, []).append(now)
            return
        bucket = self._buckets.get(channel_id)
        if bucket is None:
            bucket = self._buckets[channel_id] = _Bucket(float(self.post_burst), now)
        slack_seconds = max(0.0, now - bucket.updated) / self.time_scale
        bucket.tokens = min(float(self.post_burst), bucket.tokens + slack_seconds * self.post_rate)
        bucket.updated = max(bucket.updated, now)
        if bucket.tokens < 1.0 - _TOKEN_EPSILON:  # the epsilon absorbs float error in clock differences
            self._rate_limited[channel_id] = self._rate_limited.get(channel_id, 0) + 1
            raise _RateLimited(max(1, math.ceil((1.0 - bucket.tokens) / self.post_rate - _TOKEN_EPSILON)))
        bucket.tokens = max(0.0, bucket.tokens - 1.0)
        self._post_times.setdefault(channel_id, []).append(now)

    def _require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise _ApiError("missing_scope", needed=scope, provided=",".join(sorted(self.scopes)))

    def _channel(self, reference: str) -> _Channel | None:
        if reference in self._channels:
            return self._channels[reference]
        if reference in self._users:  # posting to a user id lands in the bot's DM with them
            dm_id = "D" + reference[1:]
            if dm_id not in self._channels:
                self._channels[dm_id] = _Channel(dm_id, f"dm-{reference}", {reference, self.bot_user_id})
            return self._channels[dm_id]
        name = reference.removeprefix("#")
        return next((c for c in self._channels.values() if c.name == name), None)

    def _require_channel(self, params: dict[str, Any]) -> _Channel:
        reference = params.get("channel")
        found = self._channel(str(reference)) if reference else None
        if found is None:
            raise _ApiError("channel_not_found")
        return found

    def _content(self, params: dict[str, Any], *, required: bool) -> tuple[str, list[dict[str, Any]] | None]:
        text = params.get("text")
        text = "" if text is None else str(text)
        blocks = params.get("blocks")
        if isinstance(blocks, _Undecodable) or (blocks is not None and not isinstance(blocks, list)):
            raise _ApiError("invalid_blocks_format")
        if blocks is not None:
            problems = validate_blocks(blocks)
            if problems:
                raise _ApiError("invalid_blocks", problems)
        if required and not text.strip() and not blocks and not params.get("attachments"):
            raise _ApiError("no_text")
        if len(text) > MAX_TEXT:
            raise _ApiError("msg_too_long")
        return text, blocks

    def _store_message(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        metadata: dict[str, Any] | None,
        user: str,
        bot_id: str | None,
        thread_ts: str | None,
    ) -> Message:
        if thread_ts:
            parent = self._messages.get((channel, thread_ts))
            if parent is not None and parent.thread_ts and parent.thread_ts != parent.ts:
                parent = self._messages.get((channel, parent.thread_ts), parent)  # a reply's ts → its parent
            thread_ts = parent.ts if parent is not None else thread_ts
        ts = self._next_ts()
        stored = Message(channel, ts, text, copy.deepcopy(blocks), metadata, user, bot_id, thread_ts)
        self._messages[(channel, ts)] = stored
        if thread_ts:
            parent = self._messages.get((channel, thread_ts))
            if parent is not None:
                parent.thread_ts = parent.ts
                parent.replies.append(ts)
                if user not in parent.reply_users:
                    parent.reply_users.append(user)
        return stored

    def _next_ts(self) -> str:
        with self._lock:
            micros = max(int(self.clock() * 1_000_000), self._last_ts_micros + 1)
            self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


# =============================================================================== decoding


class _Undecodable(str):
    """A JSON field whose string value did not parse (kept so the method can pick the right error)."""

    __slots__ = ()


def _decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(params)
    for name in _JSON_FIELDS:
        value = decoded.get(name)
        if isinstance(value, str):
            try:
                decoded[name] = json.loads(value) if value.strip() else None
            except json.JSONDecodeError:
                decoded[name] = _Undecodable(value)
    return decoded


def _metadata(value: Any, *, allow_empty: bool) -> dict[str, Any] | None:
    if value is None or (value == {} and allow_empty):
        return None
    if isinstance(value, _Undecodable) or not isinstance(value, Mapping):
        raise _ApiError("invalid_metadata_format")
    if not isinstance(value.get("event_type"), str) or not isinstance(value.get("event_payload"), Mapping):
        raise _ApiError("invalid_metadata_schema")
    return copy.deepcopy(dict(value))


_TS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_CURSOR_PREFIX = "next_ts:"


def _ts_micros(ts: str) -> int:
    """A Slack ts ("1700000000.000100") as whole microseconds, so that comparisons are exact."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def _ts_bound(value: Any, error: str) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not _TS.fullmatch(text):
        raise _ApiError(error)
    return _ts_micros(text)


def _flag(value: Any) -> bool:
    """Slack's booleans: true, 1 (and their JSON forms); anything else is false."""
    return value is True or str(value).strip().lower() in ("1", "true")


def _history_limit(value: Any) -> int:
    if value is None or value == "":
        return HISTORY_DEFAULT_LIMIT
    try:
        limit = int(str(value).strip())
    except ValueError as error:
        raise _ApiError("invalid_arguments", ["[ERROR] limit must be an integer [json-pointer:/limit]"]) from error
    if limit <= 0:
        return HISTORY_DEFAULT_LIMIT
    return min(limit, HISTORY_MAX_LIMIT)


def _make_cursor(micros: int) -> str:
    return base64.b64encode(f"{_CURSOR_PREFIX}{micros}".encode()).decode()


def _read_cursor(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        decoded = base64.b64decode(str(value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise _ApiError("invalid_cursor") from error
    digits = decoded.removeprefix(_CURSOR_PREFIX)
    if digits == decoded or not re.fullmatch(r"[0-9]+", digits):
        raise _ApiError("invalid_cursor")
    return int(digits)


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    media = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if media == "application/json":
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise _ApiError("invalid_json") from error
        if not isinstance(parsed, dict):
            raise _ApiError("json_not_object")
        return parsed
    if media in ("application/x-www-form-urlencoded", "text/plain"):
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError as error:
            raise _ApiError("invalid_form_data") from error
    if media == "multipart/form-data":
        message = BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if name and isinstance(payload, bytes):
                fields[str(name)] = payload.decode("utf-8", errors="replace")
        return fields
    if not media:
        raise _ApiError("missing_post_type")
    raise _ApiError("invalid_post_type")


def _make_handler(standin: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class _SlackHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "SlackStandIn"
        sys_version = ""

        def _handle(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if split.path.startswith("/response/"):
                status, text = standin._handle_response_url(split.path, self.headers.get("Content-Type", ""), raw)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if not split.path.startswith("/api/") or len(split.path) <= len("/api/"):
                self._send(404, {"ok": False, "error": "unknown_method"}, {})
                return
            method = split.path[len("/api/") :].strip("/")
            content_type = self.headers.get("Content-Type", "")
            params: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
            try:
                params.update(_parse_body(content_type, raw))
            except _ApiError as problem:
                self._send(200, {"ok": False, "error": problem.error}, {})
                return
            token = params.pop("token", None)
            authorization = self.headers.get("Authorization", "")
            if authorization[:7].lower() == "bearer ":
                token = authorization[7:].strip() or token
            status, body, headers = standin._handle_api(method, params, token, content_type)
            self._send(status, body, headers)

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            raw = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _SlackHandler


# =============================================================================== Slack → the app


def deliver(
    url: str,
    body: str,
    content_type: str,
    signing_secret: str,
    *,
    headers: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    wait: float = EVENT_ACK_SECONDS,
) -> Delivery:
    """Sign `body` as Slack signs a request (v0, HMAC-SHA256 over `v0:<timestamp>:<body>`) and POST it,
    waiting at most `wait` seconds for the answer, as Slack does."""
    import hashlib
    import hmac
    import urllib.error
    import urllib.request

    timestamp = str(int(clock()))
    digest = hmac.new(signing_secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            **dict(headers or {}),
        },
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=wait) as response:
            text = response.read().decode()
            return Delivery(response.status, text, time.perf_counter() - started)
    except urllib.error.HTTPError as error:
        return Delivery(error.code, error.read().decode(), time.perf_counter() - started)
    except (urllib.error.URLError, TimeoutError, OSError):
        return Delivery(None, "", time.perf_counter() - started)


# =============================================================================== rendering


def block_kit_builder_url(blocks: list[dict[str, Any]]) -> str:
    """A link that opens `blocks` in Slack's Block Kit Builder."""
    return "https://app.slack.com/block-kit-builder#" + quote(json.dumps({"blocks": blocks}))


_WIDTH = 72


_COLUMN = 35
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def _readable(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target[:1] in ("@", "#", "!"):
        return f"{target[0]}{label}" if label else target
    return f"{label} ({target})" if label else target


def _plain(obj: Any) -> str:
    """The text of a text object, with mrkdwn links and mentions (`<url|label>`, `<@U1>`) made readable."""
    value = str(obj.get("text", "")) if isinstance(obj, Mapping) else ("" if obj is None else str(obj))
    return _LINK.sub(_readable, value)


def _render(message: Message, channel_name: str, replies: int) -> str:
    edited = f" · edited {len(message.edits)}x" if message.edits else ""
    lines = [f"#{channel_name} · ts {message.ts} · from {message.user}{edited}"]
    body: list[str] = []
    if not message.blocks:
        body.extend(_wrap(message.text))
    for block in message.blocks or []:
        body.extend(_render_block(block))
    lines.extend(f"│ {line}".rstrip() for line in body)
    if message.metadata:
        lines.append(f"│ (metadata: {message.metadata.get('event_type')})")
    if replies:
        lines.append(f"│ ↳ {replies} repl{'y' if replies == 1 else 'ies'} in thread")
    lines.append("└" + "─" * (_WIDTH + 1))
    return "\n".join(lines)


def _render_block(block: Mapping[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [f"== {_plain(block.get('text'))} =="]
    if kind == "divider":
        return ["─" * _WIDTH]
    if kind == "section":
        out = []
        if block.get("text"):
            out.extend(_wrap(_plain(block["text"])))
        fields = [_plain(item).replace("\n", " ") for item in block.get("fields", [])]
        for left, right in zip(fields[::2], [*fields[1::2], ""], strict=False):
            if len(left) <= _COLUMN and len(right) <= _COLUMN:
                out.append(f"  {left:<{_COLUMN}} {right}".rstrip())
            else:
                out.extend(f"  {line}" for item in (left, right) if item for line in _wrap(item, _WIDTH - 2))
        if block.get("accessory"):
            out.extend(_render_elements([block["accessory"]]))
        return out
    if kind == "context":
        parts = [
            f"[image: {item.get('alt_text', '')}]" if item.get("type") == "image" else _plain(item)
            for item in block.get("elements", [])
        ]
        return [f"  {line}" for line in _wrap(" | ".join(parts))]
    if kind == "actions":
        return _render_elements(block.get("elements", []))
    if kind == "image":
        return [f"[image: {block.get('alt_text', '')}]"]
    if kind == "input":
        return [f"{_plain(block.get('label'))}: [{_plain(block.get('element', {}).get('placeholder')):_<24}]"]
    if kind == "markdown":
        return _wrap(str(block.get("text", "")))
    return [f"<{kind} block>"]


def _render_elements(elements: Iterable[Any]) -> list[str]:
    chips: list[str] = []
    notes: list[str] = []
    for element in elements:
        if not isinstance(element, Mapping):
            continue
        kind = element.get("type")
        if kind == "button":
            label = _plain(element.get("text"))
            chips.append(f"[ {label} ]")
            detail = [element["style"]] if element.get("style") else []
            confirm = element.get("confirm")
            if isinstance(confirm, Mapping):
                detail.append(
                    f'confirm "{_plain(confirm.get("title"))}": {_plain(confirm.get("text"))} '
                    f"[{_plain(confirm.get('confirm'))}] / [{_plain(confirm.get('deny'))}]"
                )
            if detail:
                note = f"{label}: {'; '.join(detail)}"
                notes.extend(textwrap.wrap(note, _WIDTH, initial_indent="    ", subsequent_indent="      "))
        elif kind == "image":
            chips.append(f"[image: {element.get('alt_text', '')}]")
        else:
            chips.append(f"[ {_plain(element.get('placeholder')) or kind} ▾ ]")
    return [" ".join(chips), *notes] if chips else []


def _wrap(text: str, width: int = _WIDTH) -> list[str]:
    out: list[str] = []
    for paragraph in text.split("\n"):
        # A long word (a URL) stays whole on its line, as a terminal can still open it.
        out.extend(textwrap.wrap(paragraph, width, break_on_hyphens=False, break_long_words=False) or [""])
    return out
