"""The approver's queue as plain domain code: reading Slack's events and commands, who sees what, the Home
view and the command replies within Block Kit's limits, and ``HomeService`` with fakes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from approvals.domain import message
from approvals.domain.authorisation import Approvers
from approvals.domain.home import (
    HOME_WAITING_SHOWN,
    REFRESH_MAX_PEOPLE,
    Challenge,
    Help,
    HomeData,
    HomeOpened,
    HomeService,
    IgnoredEvent,
    Pending,
    Status,
    Unknown,
    may_decide,
    may_see,
    parse_command_text,
    read_command,
    read_event,
    render_home,
    render_pending,
    render_status,
    response_url_allowed,
)
from approvals.domain.interactions import BadInteraction, ForeignTeam
from approvals.domain.ports import ChatUnavailable
from approvals.models.job import JobRef
from approvals.models.policy import Rule
from approvals.models.records import (
    Actor,
    ApprovalRequest,
    AuditEventType,
    AuditRecord,
    Requester,
    RequestState,
)
from approvals.models.slack import APPROVE_ACTION_ID, CANCEL_ACTION_ID, ButtonValue, SlashCommand
from tests.fakes import slash_command_body

TEAM = "T0APPROVE"
ALICE, GINA, MALLORY, DANA = "U0ALICE01", "U0GINA001", "U0MALLORY", "U0DANA001"
GROUP = "S0APPROVERS"
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
DEFAULT = Approvers(user_ids=frozenset({ALICE}), group_ids=(GROUP,))
PREFIXES = ("https://hooks.slack.com/",)
HOOK = "https://hooks.slack.com/commands/T0APPROVE/1/abc"
HOSTILE = "<!channel> *Approved by security* <https://evil.example|click> @here &amp; ``` \u202e"


def ref(n: int = 1) -> JobRef:
    return JobRef(account_id="123456789012", region="us-east-1", job_id=f"job-{n:04d}-abcdef")


def request(
    n: int = 1,
    state: RequestState = RequestState.PENDING,
    *,
    creator: str | None = DANA,
    rule: Rule | None = None,
    decider: Actor | None = None,
    reason: str | None = None,
    operation: str = "S3PutObjectTagging",
    approvals: tuple[Actor, ...] = (),
) -> ApprovalRequest:
    requester = (
        Requester(principal_arn=f"arn:aws:iam::123456789012:user/{creator}", slack_user_id=creator, found_in="event")
        if creator
        else None
    )
    decided = state in (RequestState.APPROVED, RequestState.CANCELLED, RequestState.CLOSED)
    return ApprovalRequest(
        job=ref(n),
        state=state,
        requested_at=NOW - timedelta(minutes=n),
        operation=operation,
        object_count=1200,
        requester=requester,
        rule=rule or Rule(name="default"),
        decider=decider,
        decision="approve" if state == RequestState.APPROVED else ("cancel" if decided else None),
        decision_reason=reason,
        decided_at=NOW if decided else None,
        approvals=approvals,
    )


def members(group: str) -> frozenset[str]:
    if group == GROUP:
        return frozenset({GINA})
    raise ChatUnavailable("no such group")


def unreadable(group: str) -> frozenset[str]:
    raise ChatUnavailable("Slack usergroups.users.list did not answer")


def approvers_for(req: ApprovalRequest | None) -> Approvers:
    named = req.rule.approvers if req is not None and req.rule is not None else None
    return DEFAULT if named is None else Approvers(frozenset(named.users), tuple(named.groups))


# -- fakes ------------------------------------------------------------------------------------------


class FakeQueries:
    """The requests table's indexes, as lists; records what it was asked."""

    def __init__(self, requests: list[ApprovalRequest] | None = None) -> None:
        self.requests = list(requests or [])
        self.homes: dict[str, datetime] = {}
        self.seen: set[str] = set()
        self.asked: list[str] = []

    def awaiting(self) -> list[ApprovalRequest]:
        self.asked.append("awaiting")
        open_states = (RequestState.POSTING, RequestState.PENDING, RequestState.DECIDING)
        return sorted([r for r in self.requests if r.state in open_states], key=lambda r: r.requested_at)

    def requested_by(self, user_id: str) -> list[ApprovalRequest]:
        self.asked.append(f"requested_by:{user_id}")
        mine = [r for r in self.requests if r.requester and r.requester.slack_user_id == user_id]
        return sorted(mine, key=lambda r: r.requested_at, reverse=True)[:10]

    def decided(self) -> list[ApprovalRequest]:
        self.asked.append("decided")
        done = [r for r in self.requests if r.decided_at is not None]
        return sorted(done, key=lambda r: r.decided_at or NOW, reverse=True)[:20]

    def find(self, job_id: str) -> list[ApprovalRequest]:
        return [r for r in self.requests if r.job.job_id == job_id]

    def opened_home(self, user_id: str) -> bool:
        return user_id in self.homes

    def remember_home(self, user_id: str, now: datetime) -> None:
        self.homes[user_id] = now

    def first_delivery(self, key: str, now: datetime) -> bool:
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


class FakeHomeChat:
    def __init__(self) -> None:
        self.published: dict[str, dict[str, Any]] = {}
        self.publishes: list[str] = []
        self.replies: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.failing: set[str] = set()

    def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        if "views.publish" in self.failing:
            raise ChatUnavailable("Slack views.publish failed: internal_error")
        self.publishes.append(user_id)
        self.published[user_id] = view

    def respond(self, response_url: str, text: str, blocks: list[dict[str, Any]]) -> None:
        if "respond" in self.failing:
            raise ChatUnavailable("Slack response_url answered HTTP 404: used_url")
        self.replies.append((response_url, text, blocks))

    def __len__(self) -> int:
        return len(self.publishes) + len(self.replies)


def service(queries: FakeQueries, chat: FakeHomeChat, members_of: Any = members) -> HomeService:
    audit = {
        ref(1).key: [
            AuditRecord(
                event_type=AuditEventType.APPROVAL_REQUESTED,
                time=NOW,
                job_id=ref(1).job_id,
                job_arn=ref(1).arn,
                account_id=ref(1).account_id,
                region=ref(1).region,
            )
        ]
    }
    return HomeService(
        queries=queries,
        chat=chat,
        approvers_for=approvers_for,
        members_of=members_of,
        history=lambda r: audit.get(r.key, []),
        clock=lambda: NOW,
        command_name="/s3-approvals",
    )


def command(text: str, user: str = ALICE, trigger: str = "1.2.abc") -> SlashCommand:
    return SlashCommand(
        command="/s3-approvals",
        text=text,
        user_id=user,
        team_id=TEAM,
        channel_id="C0APPROVALS",
        response_url=HOOK,
        trigger_id=trigger,
    )


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def buttons(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]


# -- reading what Slack signed ----------------------------------------------------------------------


def event_body(event: dict[str, Any], team: str = TEAM, event_id: str = "Ev0123ABCD") -> str:
    return json.dumps({"type": "event_callback", "team_id": team, "event_id": event_id, "event": event})


def test_url_verification_is_answered_with_its_challenge() -> None:
    # when
    action = read_event(json.dumps({"type": "url_verification", "challenge": "3eZbrw1aB", "token": "x"}), (TEAM,))

    # then
    assert action == Challenge("3eZbrw1aB")


def test_opening_the_home_tab_names_the_person_and_the_event() -> None:
    # when
    action = read_event(event_body({"type": "app_home_opened", "user": ALICE, "tab": "home"}), (TEAM,))

    # then
    assert action == HomeOpened(user_id=ALICE, event_id="Ev0123ABCD")


@pytest.mark.parametrize(
    "event",
    [{"type": "app_home_opened", "user": ALICE, "tab": "messages"}, {"type": "reaction_added", "user": ALICE}],
)
def test_the_messages_tab_and_other_events_are_acknowledged_and_ignored(event: dict[str, Any]) -> None:
    assert isinstance(read_event(event_body(event), (TEAM,)), IgnoredEvent)


def test_an_event_from_another_workspace_is_refused() -> None:
    with pytest.raises(ForeignTeam):
        read_event(event_body({"type": "app_home_opened", "user": ALICE, "tab": "home"}, team="T0OTHER99"), (TEAM,))


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"type": "block_actions"}),
        json.dumps({"type": "event_callback", "team_id": TEAM, "event": {}}),  # no event_id
        event_body({"type": "app_home_opened", "user": "<@U1>", "tab": "home"}),
    ],
)
def test_bodies_that_are_not_events_api_requests_are_refused(body: str) -> None:
    with pytest.raises(BadInteraction):
        read_event(body, (TEAM,))


def command_body(**overrides: str) -> str:
    return slash_command_body(ALICE, TEAM, HOOK, **overrides)


def test_a_slash_command_is_read_from_its_form() -> None:
    # when
    read = read_command(command_body(text="status job-0001-abcdef"), (TEAM,), "/s3-approvals", PREFIXES)

    # then
    assert (read.user_id, read.text, read.response_url) == (ALICE, "status job-0001-abcdef", HOOK)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"command": "/other"}, "unknown command"),
        ({"response_url": "https://evil.example/commands/1"}, "does not point at Slack"),
        ({"response_url": "https://hooks.slack.com.evil.example/x"}, "does not point at Slack"),
        ({"response_url": "https://hooks.slack.com/@evil.example/"}, "does not point at Slack"),
        ({"response_url": "http://hooks.slack.com/commands/1"}, "does not point at Slack"),
        ({"user_id": "not-a-user"}, "malformed command at user_id"),
    ],
)
def test_a_command_with_a_strange_name_or_response_url_is_refused(overrides: dict[str, str], problem: str) -> None:
    with pytest.raises(BadInteraction, match=problem):
        read_command(command_body(**overrides), (TEAM,), "/s3-approvals", PREFIXES)


def test_a_command_from_another_workspace_is_refused() -> None:
    with pytest.raises(ForeignTeam):
        read_command(command_body(team_id="T0OTHER99"), (TEAM,), "/s3-approvals", PREFIXES)


def test_a_stand_ins_response_url_is_allowed_only_where_configured() -> None:
    stand_in = "http://127.0.0.1:8123/response/T0APPROVE/abc"
    assert not response_url_allowed(stand_in, PREFIXES)
    assert response_url_allowed(stand_in, (*PREFIXES, "http://127.0.0.1:8123/"))
    assert not response_url_allowed("https://hooks.slack.com/", PREFIXES)  # nothing after the prefix


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Pending()),
        ("  pending ", Pending()),
        ("PENDING", Pending()),
        ("help", Help()),
        ("status job-0001-abcdef", Status("job-0001-abcdef")),
    ],
)
def test_subcommands(text: str, expected: object) -> None:
    assert parse_command_text(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("approve job-0001", "unknown subcommand"),
        ("status", "takes one job ID"),
        ("status a b", "takes one job ID"),
        ("status ../../etc", "not an S3 Batch Operations job ID"),
        ("status <!channel>", "not an S3 Batch Operations job ID"),
    ],
)
def test_anything_else_gets_a_clear_message(text: str, problem: str) -> None:
    parsed = parse_command_text(text)
    assert isinstance(parsed, Unknown)
    assert problem in parsed.problem


def test_an_unknown_subcommand_is_quoted_inert() -> None:
    parsed = parse_command_text("<!channel>")
    assert isinstance(parsed, Unknown)
    assert "<!channel>" not in parsed.problem
    assert "&lt;!channel&gt;" in parsed.problem


# -- who sees what --------------------------------------------------------------------------------


def test_approvers_may_decide_and_nobody_else() -> None:
    pending = request()
    assert may_decide(ALICE, pending, DEFAULT, members) is True
    assert may_decide(GINA, pending, DEFAULT, members) is True  # through the group
    assert may_decide(MALLORY, pending, DEFAULT, members) is False


def test_nobody_may_decide_their_own_job_unless_the_rule_allows_it() -> None:
    own = request(creator=ALICE)
    allowed = request(
        creator=ALICE, rule=Rule(name="sandbox", allow_self_approval=True, match={"accounts": ["1" * 12]})
    )
    assert may_decide(ALICE, own, DEFAULT, members) is False
    assert may_decide(ALICE, allowed, DEFAULT, members) is True


def test_nobody_may_decide_a_job_a_deny_rule_matches() -> None:
    denied = request(rule=Rule(name="no-lambda", action="deny", reason="Forbidden.", match={"accounts": ["1" * 12]}))
    assert may_decide(ALICE, denied, DEFAULT, members) is False


def test_unreadable_groups_mean_unknown_not_yes() -> None:
    assert may_decide(GINA, request(), DEFAULT, unreadable) is None
    assert may_see(GINA, request(), DEFAULT, unreadable) is False


def test_the_creator_and_the_deciders_may_see_a_request_others_may_not() -> None:
    decided = request(state=RequestState.APPROVED, decider=Actor(user_id=GINA, name="gina"))
    only_named = Approvers(user_ids=frozenset({ALICE}), group_ids=())
    assert may_see(DANA, decided, only_named, members)  # the creator
    assert may_see(GINA, decided, only_named, members)  # who decided
    assert not may_see(MALLORY, decided, only_named, members)


# -- the Home view ------------------------------------------------------------------------------------


def test_an_empty_home_says_so_in_every_section() -> None:
    # when
    view = render_home(MALLORY, HomeData(waiting=[], mine=[], decided=[]), NOW, "/s3-approvals")

    # then
    shown = texts(view["blocks"])
    assert view["type"] == "home"
    assert "Nothing waits for your decision." in shown
    assert "No approval requests for jobs you created." in shown
    assert "Nothing you may see was decided lately." in shown
    assert not buttons(view)


def test_home_buttons_are_the_channel_messages_buttons() -> None:
    # given
    pending = request()

    # when
    view = render_home(ALICE, HomeData(waiting=[pending], mine=[], decided=[]), NOW, "/s3-approvals")

    # then
    approve, cancel = buttons(view)
    value = ButtonValue.from_ref(pending.job).encode()
    assert (approve["action_id"], approve["value"], approve["style"]) == (APPROVE_ACTION_ID, value, "primary")
    assert (cancel["action_id"], cancel["value"], cancel["style"]) == (CANCEL_ACTION_ID, value, "danger")
    assert approve["confirm"]["title"]["text"] == "Approve this job?"


def test_a_person_who_already_approved_a_quorum_sees_only_cancel() -> None:
    # given
    rule = Rule(name="large", quorum=2, approvers={"groups": [GROUP]})
    voted = request(rule=rule, approvals=(Actor(user_id=GINA, name="gina"),))

    # when
    view = render_home(GINA, HomeData(waiting=[voted], mine=[], decided=[]), NOW, "/s3-approvals")

    # then
    assert [b["action_id"] for b in buttons(view)] == [CANCEL_ACTION_ID]
    assert "1 of 2 approvals" in texts(view["blocks"])


def test_a_full_home_stays_within_block_kit_limits() -> None:
    # given: far more of everything than a Home view can hold, with hostile text everywhere
    hostile = [
        request(n, operation=HOSTILE * 40, reason=HOSTILE * 40, decider=Actor(user_id=GINA, name=HOSTILE * 9))
        for n in range(1, 200)
    ]
    waiting = [r.model_copy(update={"state": RequestState.PENDING}) for r in hostile]
    decided = [r.model_copy(update={"state": RequestState.CANCELLED, "decided_at": NOW}) for r in hostile]

    # when
    view = render_home(ALICE, HomeData(waiting=waiting, mine=hostile, decided=decided), NOW, "/s3-approvals")

    # then
    assert len(view["blocks"]) <= 100
    assert len(buttons(view)) == 2 * HOME_WAITING_SHOWN
    assert "… and 184 more" in texts(view["blocks"])
    message.check_view(view)


def test_hostile_text_cannot_mention_link_or_fake_a_line() -> None:
    # given
    evil = request(
        operation=HOSTILE, state=RequestState.CANCELLED, reason=HOSTILE, decider=Actor(user_id=GINA, name=HOSTILE)
    )

    # when
    view = render_home(ALICE, HomeData(waiting=[], mine=[evil], decided=[evil]), NOW, "/s3-approvals")

    # then
    shown = texts(view["blocks"])
    assert "<!channel>" not in shown
    assert "<https://evil" not in shown
    assert "&lt;!channel&gt;" in shown
    assert "\u202e" not in shown
    assert all(b.get("text", {}).get("verbatim", True) for b in view["blocks"] if b["type"] == "section")


def test_recently_decided_says_who_and_why() -> None:
    # given
    cancelled = request(state=RequestState.CANCELLED, decider=Actor(user_id=GINA, name="gina"), reason="wrong prefix")
    by_policy = request(2, state=RequestState.APPROVED).model_copy(update={"decision_origin": "system:policy"})

    # when
    view = render_home(ALICE, HomeData(waiting=[], mine=[], decided=[cancelled, by_policy]), NOW, "/s3-approvals")

    # then
    shown = texts(view["blocks"])
    assert f"<@{GINA}> (gina)" in shown
    assert "wrong prefix" in shown
    assert "by policy `default`" in shown


# -- command replies -------------------------------------------------------------------------------


def test_replies_stay_within_a_messages_limits() -> None:
    # given
    many = [request(n, operation=HOSTILE * 50) for n in range(1, 120)]

    # when
    reply = render_pending(many, groups_unknown=True, command_name="/s3-approvals")

    # then
    message.validate_message(message.SlackMessage(text=reply.text, blocks=reply.blocks))
    assert len(reply.blocks) <= 50
    assert reply.text == "119 approval requests wait for your decision."


def test_a_status_reply_shows_the_request_and_its_trail_in_short() -> None:
    # given
    records = [
        AuditRecord(
            event_type=AuditEventType.DECISION_REFUSED,
            time=NOW + timedelta(seconds=n),
            job_id=ref().job_id,
            job_arn=ref().arn,
            account_id=ref().account_id,
            region=ref().region,
            actor_id=MALLORY,
            reason=HOSTILE,
        )
        for n in range(40)
    ]

    # when
    reply = render_status(ref().job_id, request(), records)

    # then
    shown = texts(reply.blocks)
    assert "the last 12 of 40" in shown
    assert "<!channel>" not in shown
    assert reply.text == f"Job {ref().job_id}: ⏳ waiting for approval"


def test_without_the_audit_table_the_trail_comes_from_the_request() -> None:
    # given
    decided = request(
        state=RequestState.CANCELLED, decider=Actor(user_id=GINA, name="gina"), reason="wrong prefix"
    ).model_copy(update={"s3_status": "Cancelled"})

    # when
    reply = render_status(ref().job_id, decided, [])

    # then
    shown = texts(reply.blocks)
    assert "*Trail*" in shown
    assert "requested" in shown
    assert "wrong prefix" in shown
    assert "S3 status: Cancelled" in shown


# -- HomeService ------------------------------------------------------------------------------------


def test_opening_home_publishes_what_waits_for_that_person() -> None:
    # given
    queries = FakeQueries([request(1), request(2, creator=ALICE), request(3, state=RequestState.APPROVED)])
    chat = FakeHomeChat()

    # when
    result = service(queries, chat).opened(ALICE, "Ev0001")

    # then
    assert result.outcome == "published"
    view = chat.published[ALICE]
    waiting = [b["block_id"] for b in view["blocks"] if b.get("block_id", "").startswith("waiting:")]
    assert waiting == [f"waiting:{ref(1).key}"]  # her own job 2 is not waiting for her (four eyes)
    assert f"mine:{ref(2).key}" in texts(view["blocks"])
    assert ALICE in queries.homes


def test_an_event_delivered_twice_is_published_once() -> None:
    # given
    queries, chat = FakeQueries([request()]), FakeHomeChat()
    home = service(queries, chat)

    # when
    first = home.opened(ALICE, "Ev0001")
    again = home.opened(ALICE, "Ev0001")

    # then
    assert (first.outcome, again.outcome) == ("published", "duplicate")
    assert chat.publishes == [ALICE]


def test_a_non_approver_sees_nothing_they_may_not_see() -> None:
    # given
    queries = FakeQueries([request(1), request(2, state=RequestState.CANCELLED, reason="secret reason")])
    chat = FakeHomeChat()
    home = service(queries, chat)

    # when
    home.opened(MALLORY, "Ev0002")
    home.answer(command("pending", MALLORY, "t1"))
    home.answer(command(f"status {ref(1).job_id}", MALLORY, "t2"))

    # then
    assert ref(1).job_id not in texts(chat.published[MALLORY]["blocks"])
    assert "secret reason" not in texts(chat.published[MALLORY]["blocks"])
    (_, pending, _pending_blocks), (_, status, status_blocks) = chat.replies
    assert pending == "Nothing waits for your decision."
    assert "Nothing to show" in status
    assert "approval_requested" not in texts(status_blocks)


def test_an_approver_gets_the_status_with_its_audit_trail() -> None:
    # given
    chat = FakeHomeChat()

    # when
    result = service(FakeQueries([request(1)]), chat).answer(command(f"status {ref(1).job_id}"))

    # then
    assert result.outcome == "answered"
    [(url, _, blocks)] = chat.replies
    assert url == HOOK
    assert "approval_requested" in texts(blocks)


def test_a_command_delivered_twice_is_answered_once() -> None:
    # given
    chat = FakeHomeChat()
    home = service(FakeQueries(), chat)

    # when
    outcomes = [home.answer(command("help")).outcome, home.answer(command("help")).outcome]

    # then
    assert outcomes == ["answered", "duplicate"]
    assert len(chat.replies) == 1


def test_a_reply_slack_refuses_is_reported_not_raised() -> None:
    chat = FakeHomeChat()
    chat.failing.add("respond")
    result = service(FakeQueries(), chat).answer(command("help"))
    assert (result.outcome, result.failures) == ("failed", 1)


def test_refresh_publishes_only_for_concerned_people_who_opened_home() -> None:
    # given: Gina (approver by group) and Mallory (nobody's approver) opened Home; Alice never did
    queries = FakeQueries([request(1)])
    queries.homes = {GINA: NOW, MALLORY: NOW, DANA: NOW}
    chat = FakeHomeChat()

    # when
    published = service(queries, chat).refresh_for(request(1))

    # then
    assert published == 2
    assert sorted(chat.publishes) == sorted([DANA, GINA])  # the creator and an approver, not Mallory or Alice


def test_refresh_never_raises() -> None:
    # given
    class Broken(FakeQueries):
        def opened_home(self, user_id: str) -> bool:
            raise RuntimeError("DynamoDB is down")

    problems: list[str] = []
    home = service(Broken(), FakeHomeChat())
    home.report = problems.append

    # when
    published = home.refresh_for(request(1))

    # then
    assert published == 0
    assert problems == ["RuntimeError: DynamoDB is down"]


def test_refresh_is_bounded() -> None:
    # given: a group of 200 people who all opened Home
    crowd = {f"U0CROWD{n:03d}" for n in range(200)}
    queries = FakeQueries([request(1)])
    queries.homes = dict.fromkeys(crowd, NOW)
    chat = FakeHomeChat()

    # when
    published = service(queries, chat, members_of=lambda g: frozenset(crowd)).refresh_for(request(1))

    # then
    assert published == len(chat.publishes) == REFRESH_MAX_PEOPLE
    assert queries.asked.count("awaiting") == 1  # the indexes are read once per refresh, not per person


def test_the_same_job_id_in_two_accounts_gets_two_distinct_blocks() -> None:
    # given
    here = request(1)
    there = here.model_copy(update={"job": here.job.model_copy(update={"account_id": "210987654321"})})

    # when
    view = render_home(ALICE, HomeData(waiting=[here, there], mine=[here, there], decided=[]), NOW, "/s3-approvals")

    # then
    ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
    assert len(ids) == len(set(ids))
