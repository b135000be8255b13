"""Slack interactivity payloads (after the signature check) and the work queued from them."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from approvals.models.job import JobRef
from approvals.models.records import Actor, DecisionKind

APPROVE_ACTION_ID = "approve_job"
CANCEL_ACTION_ID = "cancel_job"
REASON_MODAL_CALLBACK_ID = "cancel_reason"
REASON_BLOCK_ID = "reason"
REASON_INPUT_ACTION_ID = "reason_input"
MAX_BUTTON_VALUE = 2000
MAX_PRIVATE_METADATA = 3000


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
    channel: str | None = None
    message_ts: str | None = None

    def encode(self) -> str:
        return self.model_dump_json()


class SlackUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=32)
    username: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    team_id: str | None = Field(default=None, max_length=32)

    def actor(self) -> Actor:
        return Actor(user_id=self.id, name=self.username or self.name or self.id, team_id=self.team_id)


class SlackTeam(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = None


class SlackChannel(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=32)


class SlackMessageRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    ts: str = Field(min_length=1, max_length=32)


class SlackAction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action_id: str = Field(max_length=255)
    block_id: str | None = Field(default=None, max_length=255)
    value: str | None = Field(default=None, max_length=MAX_BUTTON_VALUE)
    action_ts: str | None = Field(default=None, max_length=32)


class BlockActionsPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["block_actions"]
    user: SlackUser
    team: SlackTeam | None = None
    channel: SlackChannel | None = None
    message: SlackMessageRef | None = None
    trigger_id: str | None = None
    actions: list[SlackAction] = Field(min_length=1)


class ViewState(BaseModel):
    model_config = ConfigDict(extra="ignore")
    values: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)


class SlackView(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    callback_id: str | None = None
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


class DecisionCommand(BaseModel):
    """A decision to apply, queued by the callback after the ack and applied by the decider."""

    kind: Literal["decision"] = "decision"
    job: JobRef
    decision: DecisionKind
    actor: Actor
    reason: str | None = None
    decision_id: str = Field(min_length=1)
    channel: str | None = None
    message_ts: str | None = None
    correlation_id: str | None = None

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None


class NoticeCommand(BaseModel):
    """An ephemeral notice that could not be sent inside the 3-second ack (queued instead)."""

    kind: Literal["notice"] = "notice"
    job: JobRef
    actor: Actor
    channel: str
    text: str
    correlation_id: str | None = None


class RefusalCommand(BaseModel):
    """A signed request the callback could not act on: recorded, and the person told why."""

    kind: Literal["refusal"] = "refusal"
    reason: str = Field(min_length=1, max_length=500)
    actor: Actor | None = None
    job: JobRef | None = None
    channel: str | None = Field(default=None, max_length=32)
    correlation_id: str | None = None


QueuedWork = Annotated[DecisionCommand | NoticeCommand | RefusalCommand, Field(discriminator="kind")]
