"""The approver's queue in Slack: the Home tab, the slash command, and the Events API requests behind them.

Three parts, all without network access (the adapters are handed in):

- **Reading** what Slack signed (``read_event``, ``read_command``, ``parse_command_text``): the callback
  reads a request this way to acknowledge it, and the decider reads the queued request again the same way
  after verifying its signature, as for clicks (approvals.domain.work).
- **Who sees what** (``may_decide``, ``may_see``): a person is shown as waiting for them only the pending
  requests they may decide (an approver of the request's rule, never its creator: four eyes), and only
  the requests they may decide, created or decided elsewhere.
- **What Slack shows** (``render_home``, ``render_pending``, ``render_status``, ``render_help``) and the
  ``HomeService`` that publishes a person's Home view, refreshes the Home of the people a request
  concerns (``refresh_for``, best effort, never raises) and answers the slash command.

Everything shown is built with approvals.domain.message's toolkit (escaping, clipping, Block Kit limits),
so a hostile description, display name or reason can neither mention anyone nor break a limit. The Home
view's Approve and Cancel buttons carry exactly the channel message's ``action_id`` and ``value``: a click
goes through the same callback → decisions queue → decider path, verified twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs

from pydantic import TypeAdapter, ValidationError

from approvals.domain import message
from approvals.domain.authorisation import Approvers, approver_status
from approvals.domain.interactions import BadInteraction, ForeignTeam
from approvals.domain.operations import format_count, format_utc
from approvals.domain.ports import ChatUnavailable
from approvals.models.job import JOB_ID, JobRef
from approvals.models.records import ApprovalRequest, AuditRecord, RequestState
from approvals.models.slack import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    ButtonValue,
    EventCallback,
    EventsPayload,
    SlashCommand,
    UrlVerification,
)

# -- bounds (README, "The approver's queue") ------------------------------------------------------------

MAX_HOME_BLOCKS = 100  # Slack's limit for a Home view
MAX_REPLY_BLOCKS = 50  # a message posted to a response_url
HOME_WAITING_SHOWN = 15  # each is two blocks (summary, buttons)
HOME_MINE_SHOWN = 10
HOME_DECIDED_SHOWN = 20
PENDING_REPLY_SHOWN = 20
STATUS_AUDIT_SHOWN = 12
REFRESH_MAX_PEOPLE = 25  # Home views published per refresh, at most (views.publish is Tier 4: 100+/min)
SUMMARY_BUDGET = 1200
ACTIVE_STATES = frozenset({RequestState.PENDING, RequestState.DECIDING})
FINAL_STATES = frozenset({RequestState.APPROVED, RequestState.CANCELLED, RequestState.CLOSED})
POLICY_ORIGIN_PREFIX = "system:"
COMMAND_HELP = "help"
GROUPS_UNKNOWN = f"{message.WARNING_SIGN} Approver groups could not be read just now: some requests may be missing."
_events: TypeAdapter[Any] = TypeAdapter(EventsPayload)
_WORD = re.compile(r"\S+")


# -- ports ----------------------------------------------------------------------------------------


class HomeQueries(Protocol):
    """Read-only, indexed views of the requests table, and the few items the Home tab keeps itself."""

    def awaiting(self) -> list[ApprovalRequest]:
        """Requests still open (posting, pending, deciding), oldest first, bounded."""
        ...

    def requested_by(self, user_id: str) -> list[ApprovalRequest]:
        """Requests whose creator is this Slack user, newest first, bounded."""
        ...

    def decided(self) -> list[ApprovalRequest]:
        """The most recently decided requests (approved, cancelled, closed), newest first, at most 20."""
        ...

    def find(self, job_id: str) -> list[ApprovalRequest]:
        """Requests for jobs with this ID (any account or region), bounded."""
        ...

    def opened_home(self, user_id: str) -> bool:
        """Whether this person has opened the Home tab before (only their Home is ever refreshed)."""
        ...

    def remember_home(self, user_id: str, now: datetime) -> None: ...

    def first_delivery(self, key: str, now: datetime) -> bool:
        """True the first time ``key`` (an Events API event_id, a command's trigger_id) is seen: a durable
        conditional write decides, so a retry or a second delivery is answered False."""
        ...


class HomeChat(Protocol):
    def publish_home(self, user_id: str, view: dict[str, Any]) -> None: ...

    def respond(self, response_url: str, text: str, blocks: list[dict[str, Any]]) -> None:
        """An ephemeral reply through a slash command's response_url; raises ChatUnavailable."""
        ...


# -- reading what Slack signed ----------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """``url_verification``: answer with the challenge."""

    challenge: str


@dataclass(frozen=True)
class HomeOpened:
    """Someone opened the Home tab: publish their view (after the ack)."""

    user_id: str
    event_id: str


@dataclass(frozen=True)
class IgnoredEvent:
    """An event this app does not act on (the Messages tab opened, another type): acknowledge it."""

    reason: str


EventAction = Challenge | HomeOpened | IgnoredEvent


def _served(team_id: str | None, enterprise_id: str | None, teams: tuple[str, ...]) -> None:
    if team_id in teams or (enterprise_id is not None and enterprise_id in teams):
        return
    shown = (team_id or enterprise_id or "none")[:32]
    raise ForeignTeam(f"this app serves another Slack workspace (the request came from {shown!r})")


def read_event(body: str, teams: tuple[str, ...]) -> EventAction:
    """What a verified Events API body asks for. Raises ForeignTeam for another workspace's event and
    BadInteraction for a body that is not an Events API request."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadInteraction("the event is not JSON") from None
    if not isinstance(data, dict) or "type" not in data:
        raise BadInteraction("the event has no type")
    try:
        payload = _events.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "union_tag_invalid":
            raise BadInteraction(f"unsupported Events API request type {str(data.get('type'))[:40]!r}") from None
        where = ".".join(str(p) for p in first["loc"])
        raise BadInteraction(f"malformed event at {where}: {first['msg']}") from None
    if isinstance(payload, UrlVerification):
        return Challenge(payload.challenge)
    assert isinstance(payload, EventCallback)
    _served(payload.team_id, payload.enterprise_id, teams)
    try:
        opened = payload.home_opened()
    except ValidationError:
        raise BadInteraction("the app_home_opened event names no valid user") from None
    if opened is None:
        return IgnoredEvent(f"event {str(payload.event.get('type'))[:40]!r} (tab {payload.event.get('tab')!r})")
    return HomeOpened(user_id=opened.user, event_id=payload.event_id)


def read_command(
    body: str, teams: tuple[str, ...], command_name: str, response_prefixes: Sequence[str]
) -> SlashCommand:
    """A verified slash command body. Raises ForeignTeam or BadInteraction (an unknown command, a
    response_url that does not point at Slack)."""
    try:
        fields = parse_qs(body, keep_blank_values=True, max_num_fields=30, errors="strict")
    except ValueError:
        raise BadInteraction("the command form has too many fields or is not UTF-8") from None
    flat = {key: values[0] for key, values in fields.items()}
    try:
        command = SlashCommand.model_validate(flat)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadInteraction(f"malformed command at {where}: {first['msg']}") from None
    _served(command.team_id, command.enterprise_id, teams)
    if command.command != command_name:
        raise BadInteraction(f"unknown command {command.command[:32]!r}")
    if not response_url_allowed(command.response_url, response_prefixes):
        raise BadInteraction("the command's response_url does not point at Slack")
    return command


def response_url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """``https://hooks.slack.com/…`` (or a configured stand-in's origin), with nothing that could redirect
    the reply elsewhere (credentials, a backslash, whitespace)."""
    if any(char in url for char in "\\@ \t\r\n") or len(url) > 1024:
        return False
    return any(url.startswith(prefix) and len(url) > len(prefix) for prefix in prefixes)


@dataclass(frozen=True)
class Pending:
    pass


@dataclass(frozen=True)
class Status:
    job_id: str


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Unknown:
    """A subcommand (or job ID) that means nothing here; ``problem`` says what was wrong."""

    problem: str


Subcommand = Pending | Status | Help | Unknown


def parse_command_text(text: str) -> Subcommand:
    """``pending`` (also the default), ``status <job id>``, ``help``; anything else is Unknown."""
    words = _WORD.findall(text or "")
    if not words or (words[0].lower() == "pending" and len(words) == 1):
        return Pending()
    verb = words[0].lower()
    if verb == COMMAND_HELP and len(words) == 1:
        return Help()
    if verb == "status":
        if len(words) != 2:
            return Unknown("`status` takes one job ID")
        if not JOB_ID.fullmatch(words[1]):
            return Unknown("that is not an S3 Batch Operations job ID (5 to 36 of A-Z, a-z, 0-9, _ and -)")
        return Status(words[1])
    return Unknown(f"unknown subcommand {message.code(verb, 40)}")


# -- who sees what ----------------------------------------------------------------------------------


def _creator(request: ApprovalRequest) -> str | None:
    return request.requester.slack_user_id if request.requester else None


def may_decide(
    user_id: str, request: ApprovalRequest, approvers: Approvers, members_of: Callable[[str], frozenset[str]]
) -> bool | None:
    """Whether this person may decide this request at all: an approver of its rule (or of the deployment),
    never its creator unless the rule allows it, and never under a rule that denies the job. None when an
    approver group that might admit them could not be read."""
    rule = request.rule
    if rule is not None and rule.action == "deny":
        return False
    if _creator(request) == user_id and not (rule is not None and rule.allow_self_approval):
        return False
    return approver_status(user_id, approvers, members_of)


def may_see(
    user_id: str, request: ApprovalRequest, approvers: Approvers, members_of: Callable[[str], frozenset[str]]
) -> bool:
    """Whether this person may see this request: its creator, someone who decided or voted on it, or an
    approver of it. Unknown group membership means no."""
    if _creator(request) == user_id:
        return True
    if any(actor.user_id == user_id for actor in (*request.approvals, *filter(None, [request.decider]))):
        return True
    return approver_status(user_id, approvers, members_of) is True


# -- what the Home tab shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class HomeData:
    """What one person's Home shows, already filtered for them."""

    waiting: list[ApprovalRequest]
    mine: list[ApprovalRequest]
    decided: list[ApprovalRequest]
    groups_unknown: bool = False  # an approver group could not be read: some requests may be missing


def _job_line(request: ApprovalRequest) -> str:
    ref = request.job
    what = message.safe(request.operation or "unknown operation", 80)
    count = f"{format_count(request.object_count)} object" + ("" if request.object_count == 1 else "s")
    return (
        f"*Job* {message.code(ref.job_id, 60)} · {what} · {count} · {message.account_field(ref, request.account_name)} "
        f"{message.code(ref.region, 30)} · <{ref.console_url}|Open in the S3 console>"
    )


def _requester(request: ApprovalRequest) -> str:
    creator = _creator(request)
    if creator:
        return f"Requested by {message.user_mention(creator)}"
    if request.requester is not None:
        return f"Requested by {message.code(request.requester.principal_arn, 200)}"
    return "Requested by: not known yet"


def _progress(request: ApprovalRequest) -> str | None:
    rule = request.rule
    if rule is None or rule.action != "require_approval" or rule.quorum <= 1:
        return None
    voted = ", ".join(message.user_mention(actor.user_id) for actor in request.approvals[:10]) or "none yet"
    return f"{len(request.approvals)} of {rule.quorum} approvals ({voted})"


def _rule(request: ApprovalRequest) -> str | None:
    return f"Policy rule {message.code(request.rule.name, 60)}" if request.rule is not None else None


def _waiting_blocks(request: ApprovalRequest, user_id: str) -> list[dict[str, Any]]:
    ref = request.job
    rows = [_job_line(request)]
    rows.append(" · ".join(filter(None, [_requester(request), f"since {format_utc(request.requested_at)}"])))
    rows += list(filter(None, [_rule(request), _progress(request)]))
    voted = any(actor.user_id == user_id for actor in request.approvals)
    if request.state == RequestState.DECIDING:
        rows.append("⏳ A decision is being applied.")
    elif voted:
        rows.append("✅ You approved: waiting for the other approvals.")
    if request.requester is None and request.rule is not None and not request.rule.allow_self_approval:
        rows.append("🔎 Who created this job is still being looked up: approval may have to wait.")
    blocks: list[dict[str, Any]] = [message.section(message.fit("\n".join(rows), SUMMARY_BUDGET), f"waiting:{ref.key}")]
    if request.state == RequestState.PENDING:
        blocks.append(_buttons(request, approve=not voted))
    return blocks


def _buttons(request: ApprovalRequest, approve: bool) -> dict[str, Any]:
    """The channel message's Approve and Cancel: the same action_ids and value, so a click takes the same path."""
    ref = request.job
    value = ButtonValue.from_ref(ref).encode()
    count = f"{format_count(request.object_count)} object" + ("" if request.object_count == 1 else "s")
    confirm_text = (
        f"Job {ref.job_id} will start on {count}: {message.one_line(request.operation or 'unknown operation')}. "
        "S3 cannot undo what it has already done."
    )
    elements: list[dict[str, Any]] = []
    if approve:
        elements.append(
            {
                "type": "button",
                "action_id": APPROVE_ACTION_ID,
                "text": message.plain_text("Approve", message.MAX_BUTTON_TEXT),
                "style": "primary",
                "value": value,
                "confirm": {
                    "title": message.plain_text("Approve this job?", message.MAX_CONFIRM_TITLE),
                    "text": message.plain_text(confirm_text, message.MAX_CONFIRM_TEXT),
                    "confirm": message.plain_text("Approve", message.MAX_CONFIRM_BUTTON),
                    "deny": message.plain_text("Back", message.MAX_CONFIRM_BUTTON),
                },
            }
        )
    elements.append(
        {
            "type": "button",
            "action_id": CANCEL_ACTION_ID,
            "text": message.plain_text("Cancel", message.MAX_BUTTON_TEXT),
            "style": "danger",
            "value": value,
        }
    )
    return {"type": "actions", "block_id": f"decision:{ref.key}", "elements": elements}


def _state_words(request: ApprovalRequest) -> str:
    return {
        RequestState.POSTING: "⏳ being posted",
        RequestState.PENDING: "⏳ waiting for approval",
        RequestState.DECIDING: "⏳ decision in progress",
        RequestState.APPROVED: "✅ approved",
        RequestState.CANCELLED: "🛑 cancelled",
        RequestState.CLOSED: f"{message.INFO_SIGN} closed",
    }[request.state]


def _who_decided(request: ApprovalRequest) -> str:
    origin = request.decision_origin or ""
    if origin == message.EXPIRY_ORIGIN:
        return "at its deadline (nobody decided)"
    if origin.startswith(POLICY_ORIGIN_PREFIX):
        name = request.rule.name if request.rule is not None else origin.removeprefix(POLICY_ORIGIN_PREFIX)
        return f"by policy {message.code(name, 60)}"
    people = message.deciders(request)
    if not people:
        return ""
    return "by " + ", ".join(message.mention(actor) for actor in people[:10])


def _decided_line(request: ApprovalRequest) -> str:
    head = f"{_state_words(request)} {message.code(request.job.job_id, 60)}"
    who = _who_decided(request)
    when = f"on {format_utc(request.decided_at)}" if request.decided_at else ""
    line = " ".join(filter(None, [head, who, when]))
    why = request.decision_reason or (request.outcome_note if request.state == RequestState.CLOSED else None)
    if why:
        line += f": {message.safe(why, 300)}"
    return line


def _mine_line(request: ApprovalRequest) -> str:
    line = f"{_state_words(request)} · {_job_line(request)}"
    who = _who_decided(request) if request.state in FINAL_STATES else ""
    return f"{line} {who}".rstrip()


def _more(shown: int, total: int, where: str) -> dict[str, Any] | None:
    if total <= shown:
        return None
    return message.context(f"… and {total - shown} more: {where}")


def render_home(user_id: str, data: HomeData, now: datetime, command_name: str) -> dict[str, Any]:
    """A person's Home view (``type: home``): what waits for them, their own jobs, what was decided lately."""
    blocks: list[dict[str, Any]] = [
        message.header("S3 Batch Operations approvals"),
        message.context(
            f"For {message.user_mention(user_id)} · updated {format_utc(now)} · "
            f"{message.code(command_name + ' help', 60)} lists the commands"
        ),
        message.header("Waiting for you"),
    ]
    if not data.waiting:
        blocks.append(message.section("Nothing waits for your decision.", "waiting:none"))
    for request in data.waiting[:HOME_WAITING_SHOWN]:
        blocks += _waiting_blocks(request, user_id)
    blocks += filter(None, [_more(HOME_WAITING_SHOWN, len(data.waiting), f"{command_name} pending lists them")])
    if data.groups_unknown:
        blocks.append(message.context(GROUPS_UNKNOWN))
    blocks += [{"type": "divider"}, message.header("Your jobs")]
    if not data.mine:
        blocks.append(message.section("No approval requests for jobs you created.", "mine:none"))
    for request in data.mine[:HOME_MINE_SHOWN]:
        blocks.append(message.section(message.fit(_mine_line(request), SUMMARY_BUDGET), f"mine:{request.job.key}"))
    blocks += filter(None, [_more(HOME_MINE_SHOWN, len(data.mine), "the newest are shown")])
    blocks += [{"type": "divider"}, message.header("Recently decided")]
    if not data.decided:
        blocks.append(message.section("Nothing you may see was decided lately.", "decided:none"))
    for request in data.decided[:HOME_DECIDED_SHOWN]:
        blocks.append(message.section(message.fit(_decided_line(request), SUMMARY_BUDGET)))
    view = {"type": "home", "callback_id": "approvals_home", "blocks": blocks}
    check_view(view, MAX_HOME_BLOCKS)
    return view


def check_view(view: dict[str, Any], limit: int) -> None:
    """Raise MessageTooLarge naming the first Block Kit limit the view breaks."""
    if len(view["blocks"]) > limit:
        raise message.MessageTooLarge(f"the view has {len(view['blocks'])} blocks, Slack allows {limit}")
    message.check_view(view)


# -- slash command replies --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def _reply(text: str, blocks: list[dict[str, Any]]) -> Reply:
    reply = Reply(text=message.clip(text, message.FALLBACK_BUDGET), blocks=blocks)
    message.validate_message(message.SlackMessage(text=reply.text, blocks=reply.blocks))
    return reply


def render_help(command_name: str) -> Reply:
    name = message.code(command_name, 40)
    text = (
        f"*{name} pending* lists the approval requests waiting for your decision.\n"
        f"*{name} status JOB_ID* shows a request and its audit trail in short.\n"
        f"*{name} help* shows this. Your Home tab in this app shows the same, with buttons."
    )
    return _reply(f"{command_name}: pending, status JOB_ID, help", [message.section(text, "help")])


def render_unknown(command_name: str, problem: str) -> Reply:
    text = f"Sorry: {problem}. Try {message.code(command_name + ' help', 60)}."
    return _reply(message.one_line(text), [message.section(text, "unknown")])


def render_pending(requests: list[ApprovalRequest], groups_unknown: bool, command_name: str) -> Reply:
    if not requests:
        text = "Nothing waits for your decision."
        blocks = [message.section(text, "pending:none")]
    else:
        many = len(requests) != 1
        text = f"{len(requests)} approval request{'s wait' if many else ' waits'} for your decision."
        blocks = [message.section(f"*{text}* Decide in the channel or on this app's Home tab.", "pending")]
        for request in requests[:PENDING_REPLY_SHOWN]:
            rows = [_job_line(request), f"{_requester(request)} · since {format_utc(request.requested_at)}"]
            rows += list(filter(None, [_progress(request)]))
            blocks.append(message.section(message.fit("\n".join(rows), SUMMARY_BUDGET)))
        blocks += filter(None, [_more(PENDING_REPLY_SHOWN, len(requests), "the oldest are shown")])
    if groups_unknown:
        blocks.append(message.context(GROUPS_UNKNOWN))
    return _reply(text, blocks)


def _audit_line(record: AuditRecord) -> str:
    parts = [format_utc(record.time), message.code(record.event_type.value, 40)]
    if record.actor_id:
        actor = record.actor_id
        parts.append(message.user_mention(actor) if message.SLACK_USER_ID.match(actor) else message.code(actor, 60))
    if record.action:
        parts.append(record.action)
    if record.status_after:
        parts.append(f"S3 {message.safe(record.status_after, 40)}")
    line = " · ".join(parts)
    if record.reason:
        line += f": {message.safe(record.reason, 200)}"
    return line


def request_trail(request: ApprovalRequest) -> list[str]:
    """The request's history in short, from its own record: requested, who created it, the votes, the
    decision and what S3 says (the audit table holds every fact; this needs no read of it)."""
    lines = [
        f"{format_utc(request.requested_at)} · requested"
        + (f" · rule {message.code(request.rule.name, 60)}" if request.rule else "")
    ]
    lines.append(_requester(request))
    lines += [f"approved by {message.mention(actor)}" for actor in request.approvals[:10]]
    if request.deciding_since is not None and request.state == RequestState.DECIDING:
        lines.append(f"{format_utc(request.deciding_since)} · decision in progress")
    if request.decided_at is not None:
        lines.append(f"{format_utc(request.decided_at)} · {_decided_line(request)}")
    status = request.s3_status or request.job_status
    if status:
        lines.append(f"S3 status: {message.safe(status, 40)}")
    return lines


def render_status(job_id: str, request: ApprovalRequest | None, history: list[AuditRecord]) -> Reply:
    """A request and its audit trail in short; "nothing to show" (the same words whether the job exists or
    the person may not see it)."""
    if request is None:
        nothing = f"Nothing to show for job {message.code(job_id, 60)}: there is no request you may see."
        return _reply(f"Nothing to show for job {job_id}.", [message.section(nothing, "status:none")])
    rows = [_job_line(request), f"{_requester(request)} · since {format_utc(request.requested_at)}"]
    rows += list(filter(None, [_rule(request), _progress(request)]))
    rows.append(f"*State:* {_state_words(request)}")
    if request.state in FINAL_STATES:
        rows.append(f"*Decision:* {_decided_line(request)}")
    blocks = [message.section(message.fit("\n".join(rows), 2800), "status")]
    shown = history[-STATUS_AUDIT_SHOWN:]
    if shown:
        trail = "\n".join(f"• {_audit_line(record)}" for record in shown)
        head = "*Audit trail*" + (f" (the last {len(shown)} of {len(history)})" if len(history) > len(shown) else "")
    else:
        trail = "\n".join(f"• {line}" for line in request_trail(request))
        head = "*Trail* (from the request's record; `make audit JOB=…` prints every audit record)"
    blocks.append(message.section(message.fit(f"{head}\n{trail}", 2900), "audit"))
    return _reply(f"Job {job_id}: {_state_words(request)}", blocks)


# -- the service ----------------------------------------------------------------------------------


HomeOutcome = Literal["published", "duplicate", "ignored", "answered", "failed"]


@dataclass
class HomeResult:
    outcome: HomeOutcome
    user_id: str | None = None
    detail: str | None = None
    failures: int = 0  # Slack calls that failed (views.publish, response_url)


@dataclass
class HomeService:
    queries: HomeQueries
    chat: HomeChat
    approvers_for: Callable[[ApprovalRequest | None], Approvers]
    members_of: Callable[[str], frozenset[str]]
    # The audit table's records of a job, for `status`; None: the trail in short comes from the request's own
    # record (the decider is not granted reads of the insert-only audit table).
    history: Callable[[JobRef], list[AuditRecord]] | None
    clock: Callable[[], datetime]
    command_name: str
    # Told what a best-effort refresh could not do (the handler logs it); never raises.
    report: Callable[[str], None] = lambda _detail: None

    # -- the Home tab

    def opened(self, user_id: str, event_id: str) -> HomeResult:
        """app_home_opened: once per event_id (Slack retries an event it thinks was not received)."""
        now = self.clock()
        view = self.view_for(user_id)  # read first: a failing read comes back from the queue, unclaimed
        if not self.queries.first_delivery(f"event:{event_id}", now):
            return HomeResult("duplicate", user_id, detail=f"event {event_id} already handled")
        self.queries.remember_home(user_id, now)
        try:
            self.chat.publish_home(user_id, view)
        except ChatUnavailable as exc:
            return HomeResult("failed", user_id, detail=str(exc), failures=1)
        return HomeResult("published", user_id)

    def view_for(
        self, user_id: str, awaiting: list[ApprovalRequest] | None = None, decided: list[ApprovalRequest] | None = None
    ) -> dict[str, Any]:
        return render_home(user_id, self.data_for(user_id, awaiting, decided), self.clock(), self.command_name)

    def data_for(
        self,
        user_id: str,
        awaiting: list[ApprovalRequest] | None = None,
        decided: list[ApprovalRequest] | None = None,
    ) -> HomeData:
        waiting, unknown = self.waiting_for(user_id, self.queries.awaiting() if awaiting is None else awaiting)
        seen = [
            request
            for request in (self.queries.decided() if decided is None else decided)
            if may_see(user_id, request, self.approvers_for(request), self.members_of)
        ]
        return HomeData(waiting=waiting, mine=self.queries.requested_by(user_id), decided=seen, groups_unknown=unknown)

    def waiting_for(self, user_id: str, awaiting: list[ApprovalRequest]) -> tuple[list[ApprovalRequest], bool]:
        """The open requests this person may decide, and whether a group could not be read."""
        found, unknown = [], False
        for request in awaiting:
            if request.state not in ACTIVE_STATES:
                continue
            allowed = may_decide(user_id, request, self.approvers_for(request), self.members_of)
            unknown = unknown or allowed is None
            if allowed:
                found.append(request)
        return found, unknown

    def refresh_for(self, request: ApprovalRequest) -> int:
        """Publish the Home of the people ``request`` concerns who opened Home before: its creator, those who
        decided or voted, and its approvers (named users, members of its groups). Best effort: never raises;
        returns how many Home views were published. At most ``REFRESH_MAX_PEOPLE`` people."""
        try:
            return self._refresh(request)
        except Exception as exc:  # a refresh must never affect a decision, a post or an expiry
            self.report(f"{type(exc).__name__}: {str(exc)[:200]}")
            return 0

    def _refresh(self, request: ApprovalRequest) -> int:
        people = self._concerned(request)
        opened = [user for user in people if self.queries.opened_home(user)][:REFRESH_MAX_PEOPLE]
        if not opened:
            return 0
        awaiting, decided = self.queries.awaiting(), self.queries.decided()
        published = 0
        for user in opened:
            try:
                self.chat.publish_home(user, self.view_for(user, awaiting, decided))
                published += 1
            except ChatUnavailable as exc:
                self.report(str(exc))
        return published

    def _concerned(self, request: ApprovalRequest) -> list[str]:
        people: list[str] = []

        def add(user: str | None) -> None:
            if user and message.SLACK_USER_ID.match(user) and user not in people:
                people.append(user)

        add(_creator(request))
        for actor in (*filter(None, [request.decider]), *request.approvals):
            add(actor.user_id)
        approvers = self.approvers_for(request)
        for user in sorted(approvers.user_ids):
            add(user)
        for group in approvers.group_ids:
            try:
                for user in sorted(self.members_of(group)):
                    add(user)
            except ChatUnavailable:
                continue
        return people[: REFRESH_MAX_PEOPLE * 4]  # bounded reads of HOME# items

    # -- the slash command

    def answer(self, command: SlashCommand) -> HomeResult:
        """One slash command, once per trigger_id, answered through its response_url (ephemeral)."""
        user = command.user_id
        reply = self.reply_to(user, parse_command_text(command.text))  # read first, as in ``opened``
        if not self.queries.first_delivery(f"command:{command.trigger_id}", self.clock()):
            return HomeResult("duplicate", user, detail="command already answered")
        try:
            self.chat.respond(command.response_url, reply.text, reply.blocks)
        except ChatUnavailable as exc:
            return HomeResult("failed", user, detail=str(exc), failures=1)
        return HomeResult("answered", user)

    def reply_to(self, user_id: str, subcommand: Subcommand) -> Reply:
        if isinstance(subcommand, Help):
            return render_help(self.command_name)
        if isinstance(subcommand, Unknown):
            return render_unknown(self.command_name, subcommand.problem)
        if isinstance(subcommand, Pending):
            waiting, unknown = self.waiting_for(user_id, self.queries.awaiting())
            return render_pending(waiting, unknown, self.command_name)
        visible = [
            request
            for request in self.queries.find(subcommand.job_id)
            if may_see(user_id, request, self.approvers_for(request), self.members_of)
        ]
        if not visible:
            return render_status(subcommand.job_id, None, [])
        request = max(visible, key=lambda r: r.requested_at)
        records = self.history(request.job) if self.history is not None else []
        return render_status(subcommand.job_id, request, records)
