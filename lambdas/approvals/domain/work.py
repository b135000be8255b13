"""What the decider does with one message from the decisions queue: prove it came from Slack, then act.

The queue carries only ``SignedSlackRequest``: a request exactly as Slack signed it (an interaction, an
Events API event or a slash command), plus the callback's ``intent``. Nothing in the message is believed
until Slack's signature over the body checks out with the signing secret; then the job, the person, the
decision and every text are read from the signed body itself, the same way the callback read it
(``interactions.read``, ``home.read_event``, ``home.read_command``). The intent only selects which of the
follow-ups that body allows. Anything else is refused as ``unverified``: recorded, counted, alarmed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import ValidationError

from approvals.domain import message
from approvals.domain.decisions import DecisionResult, DecisionService, Outcome
from approvals.domain.interactions import (
    BadInteraction,
    OpenReasonModal,
    Queue,
    form_payload,
    read,
    refusal,
)
from approvals.models.job import JobRef
from approvals.models.slack import SignedSlackRequest

if TYPE_CHECKING:
    from approvals.domain.home import HomeResult, HomeService

# A signed request is acted on for at most this long after Slack signed it. Retries of a failing
# decision end well within it (5 receives, 6 minutes apart); a message redriven from the dead-letter
# queue later, or replayed, is refused and recorded instead of deciding a job in someone's name.
MAX_PROOF_AGE = timedelta(hours=1)
MAX_CLOCK_SKEW = timedelta(minutes=5)

ProofCheck = Callable[[str, str, str], bool]  # (body, timestamp, signature) → Slack signed it


@dataclass
class QueuedWork:
    decisions: DecisionService
    verified: ProofCheck
    teams: tuple[str, ...]
    clock: Callable[[], datetime]
    # The approver's queue (Home tab, slash command); without it, such work is refused as not fitting.
    home: HomeService | None = None
    response_prefixes: tuple[str, ...] = ()  # where a slash command's response_url may point

    def handle(self, raw: str, on_read: Callable[[str | None], object] = lambda _: None) -> DecisionResult | HomeResult:
        """One queue message body → its effect. Never raises for a bad message: it is refused instead.

        ``on_read`` gets the callback's correlation ID (API Gateway's request ID) once the message is read.
        """
        try:
            work = SignedSlackRequest.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "message"
            return self.decisions.refuse_unverified(f"not a signed Slack request ({where}: {first['msg']})", _job(raw))
        on_read(work.correlation_id)
        if not self.verified(work.body, work.timestamp, work.signature):
            return self._unverified(work, "Slack's signature does not match the request")
        age = self.clock().timestamp() - int(work.timestamp)  # seconds: any 15-digit timestamp fits a float
        if age > MAX_PROOF_AGE.total_seconds():
            return self._unverified(work, f"signed {int(age)} s ago, older than 1 h")
        if -age > MAX_CLOCK_SKEW.total_seconds():
            return self._unverified(work, "signed in the future")
        return self._act(work)

    def _act(self, work: SignedSlackRequest) -> DecisionResult | HomeResult:
        if work.intent in ("home", "command"):
            return self._queue_view(work)
        try:
            action = read(work.body, self.teams, correlation_id=work.correlation_id)
        except BadInteraction as exc:
            if work.intent != "invalid":
                return self._unverified(work, f"the intent {work.intent!r} does not fit the signed request")
            try:
                form = form_payload(work.body)
            except BadInteraction:
                form = ""
            return self.decisions.refuse_invalid(refusal(form, str(exc), work.correlation_id))
        if work.intent == "decide" and isinstance(action, Queue):
            return self.decisions.apply(action.command)
        if work.intent == "refuse_cancel" and isinstance(action, OpenReasonModal):
            return self.decisions.refuse_cancel(action.command)
        if work.intent == "modal_failed" and isinstance(action, OpenReasonModal) and action.command.channel:
            command = action.command
            text = message.modal_failed_text(command.job.job_id)
            failed = self.decisions.tell(command.channel, command.actor.user_id, text)
            return DecisionResult(Outcome.INVALID_REQUEST, detail="cancel form not opened", notices_failed=failed)
        return self._unverified(work, f"the intent {work.intent!r} does not fit the signed request")

    def _queue_view(self, work: SignedSlackRequest) -> DecisionResult | HomeResult:
        """An app_home_opened event (publish the person's Home) or a slash command (answer it), read from
        the signed body the way the callback read it."""
        from approvals.domain.home import HomeOpened, read_command, read_event

        home = self.home
        if home is None:
            return self._unverified(work, f"the intent {work.intent!r} is not served here")
        try:
            if work.intent == "home":
                event = read_event(work.body, self.teams)
                if not isinstance(event, HomeOpened):
                    return self._unverified(work, "the intent 'home' does not fit the signed request")
                return home.opened(event.user_id, event.event_id)
            command = read_command(work.body, self.teams, home.command_name, self.response_prefixes)
        except BadInteraction as exc:
            return self._unverified(work, f"the intent {work.intent!r} does not fit the signed request ({exc})")
        return home.answer(command)

    def _unverified(self, work: SignedSlackRequest, detail: str) -> DecisionResult:
        """Filed under the job the body names (unproven, but the job's history should show the attempt)."""
        try:
            job = refusal(form_payload(work.body), detail, None).job
        except BadInteraction:
            job = None
        return self.decisions.refuse_unverified(detail, job, work.correlation_id)


def _job(raw: str) -> JobRef | None:
    """The job a message that is not a signed request names, best effort, so its history shows the attempt."""
    try:
        data = json.loads(raw)
        return JobRef.model_validate(data["job"]) if isinstance(data, dict) else None
    except (ValueError, RecursionError, KeyError, TypeError, ValidationError):
        return None
