"""Slack interactivity payloads (after the signature check) and the work queued from them."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from approvals.models.job import JobRef
from approvals.models.records import Actor, DecisionKind

APPROVE_ACTION_ID = "approve_job"
CANCEL_ACTION_ID = "cancel_job"
REASON_MODAL_CALLBACK_ID = "cancel_reason"
REASON_BLOCK_ID = "reason"
REASON_INPUT_ACTION_ID = "reason_input"
MAX_BUTTON_VALUE = 2000
MAX_PRIVATE_METADATA = 3000
MAX_BODY_BYTES = 64 * 1024  # Slack payloads are a few KB; API Gateway itself allows 10 MB

# Slack's identifiers, bounded at the edge: they flow into DynamoDB keys (1,024 bytes at most), audit
# records and StatusUpdateReason, so nothing longer or stranger than Slack sends gets past the parser.
UserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,31}$")]
TeamId = Annotated[str, StringConstraints(pattern=r"^[TE][A-Z0-9]{2,31}$")]
ChannelId = Annotated[str, StringConstraints(pattern=r"^[CGD][A-Z0-9]{2,31}$")]
Timestamp = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}(\.[0-9]{1,8})?$")]
ViewId = Annotated[str, StringConstraints(pattern=r"^V[A-Z0-9]{2,31}$")]
TriggerId = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z._-]{1,255}$")]
CorrelationId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]


class ButtonValue(BaseModel):
    """What an Approve or Cancel button carries: which job, nothing secret."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    region: str
    job_id: str

    def to_ref(self) -> JobRef:
        return JobRef(account_id=self.account_id, region=self.region, job_id=self.job_id)

    @classmethod
    def from_ref(cls, ref: JobRef) -> ButtonValue:
        return cls(account_id=ref.account_id, region=ref.region, job_id=ref.job_id)

    def encode(self) -> str:
        return json.dumps(self.model_dump(), separators=(",", ":"))


class ModalMetadata(BaseModel):
    """The reason modal's ``private_metadata``: the job and the message to update."""

    job: JobRef
    channel: ChannelId | None = None
    message_ts: Timestamp | None = None

    def encode(self) -> str:
        return self.model_dump_json()


class SlackUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: UserId
    username: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    team_id: TeamId | None = None

    def actor(self) -> Actor:
        return Actor(user_id=self.id, name=self.username or self.name or self.id, team_id=self.team_id)


class SlackTeam(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: TeamId | None = None


class SlackChannel(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: ChannelId


class SlackMessageRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    ts: Timestamp


class SlackAction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action_id: str = Field(max_length=255)
    block_id: str | None = Field(default=None, max_length=255)
    value: str | None = Field(default=None, max_length=MAX_BUTTON_VALUE)
    action_ts: Timestamp | None = None


class BlockActionsPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["block_actions"]
    user: SlackUser
    team: SlackTeam | None = None
    channel: SlackChannel | None = None
    message: SlackMessageRef | None = None
    trigger_id: TriggerId | None = None
    actions: list[SlackAction] = Field(min_length=1, max_length=25)


class ViewState(BaseModel):
    model_config = ConfigDict(extra="ignore")
    values: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)


class SlackView(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: ViewId
    callback_id: str | None = Field(default=None, max_length=255)
    private_metadata: str = Field(default="", max_length=MAX_PRIVATE_METADATA)
    state: ViewState = Field(default_factory=ViewState)


class ViewSubmissionPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["view_submission"]
    user: SlackUser
    team: SlackTeam | None = None
    view: SlackView


class ViewClosedPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["view_closed"]
    user: SlackUser


InteractionPayload = Annotated[
    BlockActionsPayload | ViewSubmissionPayload | ViewClosedPayload, Field(discriminator="type")
]


class SlackOrigin(BaseModel):
    """A person's click in Slack, proven by Slack's signature over the request (checked before this
    exists: by the callback within Slack's 5-minute window, and again by the decider)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["slack"] = "slack"


class SystemOrigin(BaseModel):
    """A decision the product makes itself (policy, expiry): made in-process by one of its own functions,
    never read from the decisions queue, and never shown or recorded as a Slack click."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["system"] = "system"
    source: str = Field(min_length=1, max_length=64)  # e.g. "policy:<rule>", "expiry"


Origin = Annotated[SlackOrigin | SystemOrigin, Field(discriminator="kind")]


class DecisionCommand(BaseModel):
    """A decision to apply: read by the decider from a Slack-signed request, or made by the product."""

    kind: Literal["decision"] = "decision"
    job: JobRef
    decision: DecisionKind
    actor: Actor
    reason: str | None = None
    decision_id: str = Field(min_length=1, max_length=128)
    channel: str | None = None
    message_ts: str | None = None
    correlation_id: str | None = None
    origin: Origin = Field(default_factory=SlackOrigin)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None


class RefusalCommand(BaseModel):
    """A signed request that cannot be acted on: recorded, and the person told why."""

    kind: Literal["refusal"] = "refusal"
    reason: str = Field(min_length=1, max_length=500)
    actor: Actor | None = None
    job: JobRef | None = None
    channel: str | None = Field(default=None, max_length=32)
    correlation_id: str | None = None


# What the callback did with a signed request, so the decider knows which follow-up it owes. The decider
# derives everything else (job, person, decision, reason, texts) from the signed body itself: an intent
# can only pick among the follow-ups that body allows.
Intent = Literal[
    "decide",  # an Approve click or a submitted cancel form: apply it
    "refuse_cancel",  # a Cancel click by someone certainly not an approver: refuse it (no form opened)
    "modal_failed",  # the cancel form could not be opened in time: tell the person to try again
    "invalid",  # a signed request that cannot be acted on: record it and tell the person why
    "home",  # an Events API app_home_opened (Home tab): publish that person's Home view
    "command",  # a slash command: answer it through its response_url
]


class SignedSlackRequest(BaseModel):
    """The one kind of work on the decisions queue: a request exactly as Slack signed it.

    The decider verifies the signature again with the signing secret before reading anything in it, so
    a message written by anyone but the callback is refused as unverified.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["slack_request"] = "slack_request"
    intent: Intent
    body: str = Field(max_length=MAX_BODY_BYTES)
    timestamp: str = Field(pattern=r"^[0-9]{1,15}$")
    signature: str = Field(pattern=r"^v0=[0-9a-f]{64}$")
    correlation_id: CorrelationId | None = None


# -- the Events API and slash commands (README, "The approver's queue") ----------------------------------

HOME_TAB = "home"
APP_HOME_OPENED = "app_home_opened"
EventId = Annotated[str, StringConstraints(pattern=r"^Ev[A-Za-z0-9]{4,60}$")]


class UrlVerification(BaseModel):
    """The Events API's handshake: answered with its ``challenge`` (after the signature check)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["url_verification"]
    challenge: str = Field(min_length=1, max_length=256)


class AppHomeOpened(BaseModel):
    """``app_home_opened``: someone opened the app's Home (``tab: home``) or Messages tab."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["app_home_opened"]
    user: UserId
    tab: str | None = Field(default=None, max_length=32)


class OtherEvent(BaseModel):
    """Any other event type: acknowledged and ignored (the manifest subscribes to app_home_opened only)."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(max_length=64)


class EventCallback(BaseModel):
    """The Events API envelope of one event. ``event_id`` is the same on Slack's retries of it."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["event_callback"]
    team_id: TeamId | None = None
    enterprise_id: TeamId | None = None
    event_id: EventId
    event_time: int | None = None
    event: dict[str, Any]

    def home_opened(self) -> AppHomeOpened | None:
        """The event when it is someone opening the Home tab; None for anything else."""
        if self.event.get("type") != APP_HOME_OPENED:
            return None
        opened = AppHomeOpened.model_validate(self.event)
        return opened if opened.tab == HOME_TAB else None


EventsPayload = Annotated[UrlVerification | EventCallback, Field(discriminator="type")]


class SlashCommand(BaseModel):
    """A slash command's form fields (``application/x-www-form-urlencoded``), after the signature check."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    command: str = Field(min_length=2, max_length=32)
    text: str = Field(default="", max_length=4000)
    user_id: UserId
    user_name: str | None = Field(default=None, max_length=255)
    team_id: TeamId
    enterprise_id: TeamId | None = None
    channel_id: str | None = Field(default=None, max_length=32)
    response_url: str = Field(min_length=1, max_length=1024)
    trigger_id: TriggerId

    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, name=self.user_name or self.user_id, team_id=self.team_id)
