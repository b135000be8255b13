"""The lifecycle sweep (approvals.domain.sweep) on the real store over moto, with fake S3 and Slack: each due
step is taken once, a failed one is due again, a decision stops the rest, and the expiry's action happens."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from approvals.adapters.store import AuditReader, DynamoRequestStore
from approvals.domain.authorisation import Approvers
from approvals.domain.decisions import DecisionService
from approvals.domain.lifecycle import Lifecycle, deadline, next_step
from approvals.domain.ports import ChatUnavailable
from approvals.domain.sweep import LifecycleSweep
from approvals.models.job import JobRef
from approvals.models.policy import Escalation, Expiry, Reminders, Rule
from approvals.models.records import Actor, ApprovalRequest, AuditEventType, Requester, RequestState
from approvals.models.slack import DecisionCommand
from sandbox.aws_local import LocalAws
from tests.fakes import FakeChat, FakeJobs, make_job

REF = JobRef(account_id="123456789012", region="us-east-1", job_id="job-0001-abcdef")
POSTED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
CHANNEL, TS = "C0APPROVALS", "1700000000.000100"
ALICE = Actor(user_id="UALICE001", name="alice", team_id="T0001")


class World:
    def __init__(self, local_aws: LocalAws, rule: Rule | None = None, requester: str | None = None) -> None:
        client = local_aws.client("dynamodb")
        self.store = DynamoRequestStore(client, local_aws.requests_table, local_aws.audit_table)
        self.audit = AuditReader(client, local_aws.audit_table)
        self.jobs = FakeJobs()
        self.chat = FakeChat()
        self.now = POSTED
        self.jobs.add(make_job(REF.job_id))
        approvers = Approvers(frozenset({ALICE.user_id, "UBOB00001"}), ("SAPPROVE1",))
        self.decisions = DecisionService(
            jobs=self.jobs,
            store=self.store,
            chat=self.chat,
            approvers=approvers,
            members_of=self.chat.group_members,
            clock=lambda: self.now,
            large_job_threshold=1_000_000,
        )
        self.sweep = LifecycleSweep(
            store=self.store,
            chat=self.chat,
            jobs=self.jobs,
            approvers=approvers,
            decide=self.decisions.apply,
            clock=lambda: self.now,
            large_job_threshold=1_000_000,
        )
        who = Requester(principal_arn="arn:aws:iam::123456789012:user/bob", slack_user_id=requester, found_in="event")
        ends = deadline(POSTED, Lifecycle.of(rule).expiry)
        request = ApprovalRequest(
            job=REF,
            state=RequestState.POSTING,
            requested_at=POSTED,
            rule=rule,
            requester=who if requester else None,
            deadline=ends,
            operation="S3PutObjectTagging",
        )
        assert self.store.claim_posting(request, POSTED, 300)
        self.store.mark_posted(REF, CHANNEL, TS, next_step(POSTED, ends, Lifecycle.of(rule), 0).at)

    def at(self, after: timedelta) -> World:
        self.now = POSTED + after
        return self

    def replies(self) -> list[str]:
        return [p["text"] for p in self.chat.calls_to("chat.postMessage") if p["thread_ts"] == TS]

    def events(self) -> list[AuditEventType]:
        return [record.event_type for record in self.audit.history(REF)]

    def request(self) -> ApprovalRequest:
        found = self.store.get(REF)
        assert found is not None
        return found


def test_nothing_happens_before_the_first_reminder_is_due(local_aws: LocalAws) -> None:
    world = World(local_aws).at(timedelta(minutes=14))

    result = world.sweep.run()

    assert result.due == 0
    assert world.replies() == []


def test_a_due_reminder_is_posted_once_in_the_thread_mentioning_the_approvers_but_not_the_creator(
    local_aws: LocalAws,
) -> None:
    # given bob created the job
    world = World(local_aws, requester="UBOB00001").at(timedelta(minutes=15))

    # when two ticks run
    first = world.sweep.run()
    second = world.sweep.run()

    # then one reminder, in the thread, naming alice and the group, not bob; the next is due at 45 minutes
    assert first.outcomes == Counter({"reminded": 1})
    assert second.due == 0
    [reply] = world.chat.calls_to("chat.postMessage")
    assert reply["channel"] == CHANNEL
    assert reply["thread_ts"] == TS
    text = reply["blocks"][0]["text"]["text"]
    assert "<@UALICE001>" in text
    assert "<!subteam^SAPPROVE1>" in text
    assert "UBOB00001" not in text
    assert world.events().count(AuditEventType.REMINDER_SENT) == 1
    request = world.request()
    assert request.reminders_sent == 1
    assert request.due_at == POSTED + timedelta(minutes=45)


def test_a_duplicated_tick_that_saw_the_same_due_step_finds_it_taken(local_aws: LocalAws) -> None:
    # given two ticks that read the due index at the same moment
    world = World(local_aws).at(timedelta(minutes=16))
    [seen] = world.store.due(world.now, 10)

    # when both take the step
    outcomes = [world.sweep.step(seen), world.sweep.step(seen)]

    # then one reminds, the other finds it taken
    assert outcomes == ["reminded", "taken_elsewhere"]
    assert len(world.replies()) == 1


def test_a_reminder_slack_refused_is_due_again_at_once_and_sent_by_the_next_tick(local_aws: LocalAws) -> None:
    # given Slack fails the first post
    world = World(local_aws).at(timedelta(minutes=16))
    world.chat.fail_next("chat.postMessage")

    # when
    failed = world.sweep.run()
    retried = world.sweep.run()

    # then nothing was recorded the first time, and the retry sent it once
    assert failed.failures == 1
    assert retried.outcomes == Counter({"reminded": 1})
    assert len(world.replies()) == 1
    assert world.events().count(AuditEventType.REMINDER_SENT) == 1


def test_a_late_sweep_sends_only_the_latest_reminder_due(local_aws: LocalAws) -> None:
    # given the sweep did not run for the first three hours (reminders due at 15, 45 and 105 minutes)
    world = World(local_aws).at(timedelta(hours=3))

    # when
    world.sweep.run()

    # then one reminder, the third, and the fourth is next
    [reply] = world.replies()
    assert "Reminder 3 of 4" in reply
    assert world.request().reminders_sent == 3
    assert world.request().due_at == POSTED + timedelta(minutes=225)


def test_escalation_mentions_the_second_group_and_posts_in_its_channel(local_aws: LocalAws) -> None:
    # given a rule escalating after one reminder to the on-call group and channel
    rule = Rule(
        name="prod",
        reminders=Reminders(escalate=Escalation(after_reminders=1, groups=["S0ONCALL01"], channel="C0ONCALL01")),
    )
    world = World(local_aws, rule=rule)

    # when the first two reminders fall due
    world.at(timedelta(minutes=15)).sweep.run()
    world.at(timedelta(minutes=45)).sweep.run()

    # then the first is a plain reminder, the second an escalation, also in the on-call channel
    first, second = world.replies()
    assert first.startswith("Reminder 1 of 4")
    assert second.startswith("Escalated (reminder 2 of 4)")
    [notice] = [p for p in world.chat.calls_to("chat.postMessage") if p["channel"] == "C0ONCALL01"]
    assert "<!subteam^S0ONCALL01>" in notice["blocks"][0]["text"]["text"]
    assert f"<#{CHANNEL}>" in notice["blocks"][0]["text"]["text"]
    assert world.events().count(AuditEventType.REQUEST_ESCALATED) == 1


def test_a_decision_takes_the_request_out_of_the_due_index(local_aws: LocalAws) -> None:
    # given alice approves before any reminder
    world = World(local_aws).at(timedelta(minutes=5))
    command = DecisionCommand(job=REF, decision="approve", actor=ALICE, decision_id="UALICE001:1", channel=CHANNEL)
    world.decisions.apply(command)

    # when the day passes
    world.at(timedelta(hours=25)).sweep.run()

    # then no reminder and no expiry
    assert world.replies() == []
    assert world.request().due_at is None
    assert AuditEventType.REQUEST_EXPIRED not in world.events()
    assert world.store.due(world.now, 10) == []


def test_at_the_deadline_cancel_cancels_the_job_once_with_the_expiry_reason(local_aws: LocalAws) -> None:
    # given every reminder was sent
    world = World(local_aws)
    for minutes in (15, 45, 105, 225):
        world.at(timedelta(minutes=minutes)).sweep.run()

    # when the deadline passes, and a duplicated tick and a late click follow
    expired = world.at(timedelta(hours=24)).sweep.run()
    world.sweep.run()
    late = world.decisions.apply(
        DecisionCommand(job=REF, decision="approve", actor=ALICE, decision_id="UALICE001:2", channel=CHANNEL)
    )

    # then one UpdateJobStatus, Cancelled, with the expiry's reason; the late click is told so
    assert expired.outcomes == Counter({"expired_cancelled": 1})
    assert world.jobs.calls_to("update_status") == [("Cancelled", "Expired: no decision within 24 h (policy default)")]
    request = world.request()
    assert request.state == RequestState.CANCELLED
    assert request.decision_origin == "system:expiry"
    assert late.refused
    [told] = [p["text"] for p in world.chat.calls_to("chat.postEphemeral") if p["user"] == ALICE.user_id]
    assert "expired" in told
    assert "Nothing was changed" in told
    events = world.events()
    assert events.count(AuditEventType.REQUEST_EXPIRED) == 1
    assert events.count(AuditEventType.DECISION_TAKEN) == 1
    [record] = [r for r in world.audit.history(REF) if r.event_type == AuditEventType.REQUEST_EXPIRED]
    assert record.action == "cancel"
    assert record.origin == "system:expiry"


def test_an_expiry_whose_s3_call_fails_is_tried_again_by_the_next_tick(local_aws: LocalAws) -> None:
    from approvals.domain.ports import JobsUnavailable

    world = World(local_aws, rule=Rule(name="quiet", reminders=Reminders(max=0)))
    world.jobs.fail_next("update_status", JobsUnavailable("throttled"))

    first = world.at(timedelta(hours=24)).sweep.run()
    second = world.sweep.run()

    assert first.outcomes == Counter({"expiry_retried": 1})
    assert second.outcomes == Counter({"expired_cancelled": 1})
    assert [args[0] for args in world.jobs.calls_to("update_status")] == ["Cancelled", "Cancelled"]
    assert world.jobs.jobs[REF.job_id].status == "Cancelled"
    assert world.events().count(AuditEventType.DECISION_TAKEN) == 1


@pytest.mark.parametrize(("keep", "state"), [(True, RequestState.PENDING), (False, RequestState.CLOSED)])
def test_leave_marks_the_request_expired_and_leaves_the_job_suspended(
    local_aws: LocalAws, keep: bool, state: RequestState
) -> None:
    # given a rule that leaves the job at its deadline
    rule = Rule(
        name="manual", reminders=Reminders(max=0), expiry=Expiry(after_hours=2, action="leave", keep_buttons=keep)
    )
    world = World(local_aws, rule=rule, requester="UBOB00001")

    # when
    result = world.at(timedelta(hours=2)).sweep.run()

    # then the job is untouched, the message and thread say it expired, the audit records the action
    assert result.outcomes == Counter({"expired_left" if keep else "expired_closed": 1})
    assert world.jobs.calls_to("update_status") == []
    request = world.request()
    assert request.state == state
    [update] = world.chat.calls_to("chat.update")
    shown = str(update["blocks"])
    assert "Expired" in shown
    buttons = [b for b in update["blocks"] if b.get("type") == "actions"]
    assert bool(buttons) == keep
    last = [p for p in world.chat.calls_to("chat.postMessage") if p["thread_ts"] == TS][-1]
    assert "left Suspended" in last["blocks"][0]["text"]["text"]
    [record] = [r for r in world.audit.history(REF) if r.event_type == AuditEventType.REQUEST_EXPIRED]
    assert record.detail == f"expiry action: {'leave' if keep else 'close'} (policy manual)"
    assert world.store.due(world.now + timedelta(days=1), 10) == []
    if keep:  # a late decision is still possible
        late = world.decisions.apply(
            DecisionCommand(job=REF, decision="approve", actor=ALICE, decision_id="UALICE001:3", channel=CHANNEL)
        )
        assert not late.refused
        assert world.jobs.jobs[REF.job_id].status == "Ready"


def test_a_tick_reads_only_the_due_index(local_aws: LocalAws) -> None:
    # given a pending request not yet due, and every DynamoDB call counted
    world = World(local_aws).at(timedelta(minutes=1))
    client = local_aws.client("dynamodb")
    store = DynamoRequestStore(client, local_aws.requests_table, local_aws.audit_table)
    world.sweep.store = store
    calls: list[tuple[str, dict[str, Any]]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb", lambda params, model, **_: calls.append((model.name, params))
    )

    # when
    world.sweep.run()

    # then one Query of the state index, nothing else
    assert [(name, params.get("IndexName")) for name, params in calls] == [("Query", "StateIndex")]


def test_the_change_hook_hears_of_decisions_and_expiries_and_its_failure_changes_nothing(local_aws: LocalAws) -> None:
    # given a hook (the Home tab's refresh) that fails every time, on the decision service and the sweep
    world = World(local_aws, rule=Rule(name="quiet", reminders=Reminders(max=0)))
    heard: list[RequestState] = []

    def refresh(request: ApprovalRequest) -> None:
        heard.append(request.state)
        raise RuntimeError("Slack is down")

    world.decisions.on_change = refresh
    world.sweep.on_change = refresh

    # when the request expires and the expiry cancels the job
    result = world.at(timedelta(hours=24)).sweep.run()

    # then the job is cancelled all the same, and the hook heard of it once
    assert result.outcomes == Counter({"expired_cancelled": 1})
    assert world.jobs.jobs[REF.job_id].status == "Cancelled"
    assert heard == [RequestState.CANCELLED]


class OnCallChannelDown(FakeChat):
    """Slack, with the bot not in the escalation's channel."""

    def post(self, channel: str, text: str, blocks: Any, metadata: Any, thread_ts: str | None = None) -> str:
        if channel == "C0ONCALL01":
            raise ChatUnavailable("Slack chat.postMessage failed: not_in_channel")
        return super().post(channel, text, blocks, metadata, thread_ts)


def test_an_escalation_channel_slack_refuses_never_repeats_the_reminder_in_the_thread(local_aws: LocalAws) -> None:
    # given a rule escalating to a channel the bot is not in
    rule = Rule(
        name="prod",
        reminders=Reminders(escalate=Escalation(after_reminders=0, groups=["S0ONCALL01"], channel="C0ONCALL01")),
    )
    world = World(local_aws, rule=rule)
    world.chat = world.sweep.chat = OnCallChannelDown()

    # when the first reminder falls due and five ticks run
    for _ in range(5):
        world.at(timedelta(minutes=16)).sweep.run()

    # then one reminder in the thread; the audit says the notice failed
    assert len(world.replies()) == 1
    [record] = [r for r in world.audit.history(REF) if r.event_type == AuditEventType.REQUEST_ESCALATED]
    assert "the notice to channel C0ONCALL01 failed" in (record.detail or "")
    assert world.request().reminders_sent == 1


def test_a_rule_that_now_allows_fewer_reminders_still_expires_the_request(local_aws: LocalAws) -> None:
    # given two reminders went out, then the rule changed to one with none (the creator was learnt)
    world = World(local_aws)
    world.at(timedelta(minutes=15)).sweep.run()
    world.at(timedelta(minutes=45)).sweep.run()
    assert world.request().reminders_sent == 2
    world.sweep.run()  # nothing due
    world.store.set_requester(
        REF,
        Requester(principal_arn="arn:aws:iam::123456789012:user/bob", slack_user_id="UBOB00001", found_in="event"),
        Rule(name="quiet", reminders=Reminders(max=0)),
    )
    world.at(timedelta(minutes=106)).sweep.run()  # the old third reminder's time: the step is re-planned

    # when the deadline (fixed at posting: 24 h) passes
    result = world.at(timedelta(hours=24)).sweep.run()

    # then it expired, and the reason says the time it was given
    assert result.outcomes == Counter({"expired_cancelled": 1})
    assert world.jobs.calls_to("update_status") == [("Cancelled", "Expired: no decision within 24 h (policy quiet)")]


def test_nothing_is_recorded_as_expired_when_a_person_decided_first(local_aws: LocalAws) -> None:
    # given alice's approval lands between the sweep taking the expiry and the expiry's cancellation
    world = World(local_aws, rule=Rule(name="quiet", reminders=Reminders(max=0)), requester="UBOB00001")
    expire = world.sweep.decide

    def alice_first(command: DecisionCommand) -> Any:
        world.decisions.apply(
            DecisionCommand(job=REF, decision="approve", actor=ALICE, decision_id="UALICE001:9", channel=CHANNEL)
        )
        return expire(command)

    world.sweep.decide = alice_first

    # when
    result = world.at(timedelta(hours=24)).sweep.run()

    # then the job is approved, and the audit holds no request_expired
    assert result.outcomes == Counter({"expiry_not_needed_already_decided": 1})
    assert world.request().state == RequestState.APPROVED
    assert AuditEventType.REQUEST_EXPIRED not in world.events()
    assert [args[0] for args in world.jobs.calls_to("update_status")] == ["Ready"]


def test_a_job_that_moved_on_outside_slack_is_closed_not_reminded(local_aws: LocalAws) -> None:
    # given the job was cancelled in the console and its status event was lost
    world = World(local_aws)
    world.jobs.set_status(REF.job_id, "Cancelled", "cancelled in the console")

    # when the first reminder falls due
    result = world.at(timedelta(minutes=16)).sweep.run()

    # then no reminder; the request is closed and no longer due
    assert result.outcomes == Counter({"moved_on": 1})
    assert world.replies() == []
    assert world.request().state == RequestState.CLOSED
    assert world.store.due(world.now + timedelta(days=2), 10) == []


def test_a_reminder_in_an_account_the_hub_cannot_reach_waits_without_failing_the_tick(local_aws: LocalAws) -> None:
    from approvals.domain.ports import AccountUnreachable
    from approvals.domain.sweep import UNREACHABLE_RETRY

    # given: the first reminder is due, and the job's account cannot be reached (its spoke role)
    world = World(local_aws)
    world.jobs.fail_next("describe", AccountUnreachable("the hub cannot act in account 210987654321 (us-west-2)"))

    # when
    first = world.at(timedelta(minutes=16)).sweep.run()

    # then: nothing sent, the tick does not fail (the other requests' steps go on), the step waits
    assert first.outcomes == Counter({"account_unreachable": 1})
    assert first.failures == 0
    assert world.replies() == []
    assert world.sweep.run().outcomes == Counter(), "not due again at once"

    # when: the wait is over and the account can be reached again
    again = world.at(timedelta(minutes=16) + UNREACHABLE_RETRY).sweep.run()

    # then
    assert again.outcomes == Counter({"reminded": 1})
    assert len(world.replies()) == 1


def test_a_request_of_an_account_the_hub_no_longer_serves_is_closed_by_the_sweep(local_aws: LocalAws) -> None:
    from approvals.domain.ports import AccountNotServed

    world = World(local_aws)
    world.jobs.fail_next("describe", AccountNotServed("this hub does not serve account 210987654321 in us-west-2"))

    result = world.at(timedelta(minutes=16)).sweep.run()

    assert result.outcomes == Counter({"account_not_served": 1})
    assert result.failures == 0
    closed = world.store.get(REF)
    assert closed is not None
    assert closed.state == RequestState.CLOSED
    assert "does not serve account 210987654321" in (closed.outcome_note or "")
    assert world.sweep.run().outcomes == Counter(), "nothing left to do for it"
