"""The Slack message: what a person reads before approving, the buttons, the outcome, and the limits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from approvals.domain import message
from approvals.domain.message import (
    MessageTooLarge,
    SlackMessage,
    clip,
    escape_mrkdwn,
    render_reason_modal,
    render_request,
    render_status_reply,
    slack_len,
    validate_message,
)
from approvals.domain.reasons import MAX_NAME, MAX_REASON, status_update_reason
from approvals.models.job import FailureReason, Job, JobRef, ProgressSummary
from approvals.models.records import Actor, ApprovalRequest, RequestState
from approvals.models.slack import (
    APPROVE_ACTION_ID,
    CANCEL_ACTION_ID,
    REASON_BLOCK_ID,
    REASON_INPUT_ACTION_ID,
    REASON_MODAL_CALLBACK_ID,
    ButtonValue,
    ModalMetadata,
)
from tests.helpers import load_event

THRESHOLD = 1_000_000
ALICE = Actor(user_id="UALICE001", name="alice", team_id="T0001")
DECIDED_AT = datetime(2025, 3, 14, 11, 2, 33, tzinfo=UTC)
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji made of three joined with ZWJ
FLAG = "\U0001f1eb\U0001f1f7"  # a flag: two regional indicators


# -- helpers --------------------------------------------------------------------------------------


def load_job(name: str) -> tuple[Job, JobRef]:
    job = Job.model_validate(load_event(f"describe_job_{name}")["Job"])
    return job, JobRef(account_id="111122223333", region="eu-west-1", job_id=job.job_id)


@pytest.fixture
def tagging() -> tuple[Job, JobRef]:
    return load_job("tagging")


def request(ref: JobRef, state: RequestState, **changes: Any) -> ApprovalRequest:
    return ApprovalRequest(job=ref, state=state, requested_at=datetime(2025, 3, 14, 9, 32, tzinfo=UTC), **changes)


def texts(node: object) -> Iterator[str]:
    """Every string a person can read in a block tree (text objects, labels, button words)."""
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            yield node["text"]
        for key, value in node.items():
            if key != "text" or not isinstance(value, str):
                yield from texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def readable(msg: SlackMessage) -> str:
    return "\n".join([msg.text, *texts(msg.blocks)])


def block(msg: SlackMessage, block_id: str) -> dict[str, Any]:
    return next(b for b in msg.blocks if b.get("block_id") == block_id)


def actions(msg: SlackMessage) -> list[dict[str, Any]]:
    return [b for b in msg.blocks if b["type"] == "actions"]


def fields(msg: SlackMessage) -> dict[str, str]:
    return dict(f["text"].split("\n", 1) for f in block(msg, "details")["fields"])


def assert_slack_accepts(msg: SlackMessage) -> None:
    """A second opinion: slack_sdk's block models parse every block and find no broken limit."""
    validate_message(msg)
    for raw in msg.blocks:
        parsed = Block.parse(raw)
        assert parsed is not None, raw
        parsed.to_dict()  # raises SlackObjectFormationError on a broken limit


def assert_no_live_markup(msg: SlackMessage, ref: JobRef, allowed_mentions: tuple[str, ...] = ()) -> None:
    """The only <…> Slack would act on are the console link and the decider's mention."""
    allowed = {f"<{ref.console_url}|Open in the S3 console>", *(f"<@{m}>" for m in allowed_mentions)}
    for text in texts(msg.blocks):
        for markup in re.findall(r"<[^>]*>", text):
            assert markup in allowed, markup
    assert "<" not in msg.text


# -- the request, for every operation -------------------------------------------------------------

# sample → (operation title, key parameter lines, manifest line, count, warning words)
READS: dict[str, tuple[str, list[str], str, str, list[str]]] = {
    "lambda_invoke": (
        "Invoke a Lambda function on each object",
        [
            "*Function:* `arn:aws:lambda:eu-west-1:111122223333:function:redact-pii:live`",
            "*User arguments:* `mode=redact, dryRun=false`",
        ],
        "*Manifest key:* `jobs/2025-03-14/objects.csv`",
        "1,250",
        ["Runs custom code"],
    ),
    "copy": (
        "Copy objects",
        [
            "*Target bucket:* `acme-log-archive`",
            "*Storage class:* `GLACIER`",
            "*Metadata:* `Replace with new metadata`",
        ],
        "*Source bucket:* `acme-logs`",
        "2,500,000",
        [
            "Replaces object metadata",
            "Copies into GLACIER",
            "Copies get GOVERNANCE retention",
            "Very large job: 2,500,000",
        ],
    ),
    "acl": (
        "Replace object ACLs",
        ["*Owner:* `acme-media`"],
        "*Manifest bucket:* `acme-batch-manifests`",
        "312",
        ["Grants READ to everyone"],
    ),
    "tagging": (
        "Replace object tags",
        ["*Tags:* `env=prod, team=data`"],
        "*Format:* `CSV list of objects`",
        "48,211",
        ["Replaces each object's whole tag set"],
    ),
    "delete_tagging": (
        "Delete all object tags",
        ["*Effect:* `Removes every tag from each object`"],
        "*Manifest bucket:* `acme-batch-manifests`",
        "9,800",
        ["Deletes every tag", "No completion report"],
    ),
    "restore": (
        "Restore archived objects",
        ["*Keep restored copy for:* `7 days`"],
        "*Manifest bucket:* `acme-batch-manifests`",
        "15,000",
        [],
    ),
    "legal_hold": (
        "Set Object Lock legal hold",
        ["*Legal hold:* `ON`"],
        "*Manifest bucket:* `acme-batch-manifests`",
        "420",
        ["Places a legal hold on every object"],
    ),
    "retention": (
        "Set Object Lock retention",
        ["*Mode:* `COMPLIANCE`", "*Retain until:* `31 Mar 2032 00:00 UTC`"],
        "*Manifest bucket:* `acme-batch-manifests`",
        "88,000",
        ["nobody, not even the root user, can shorten it"],
    ),
    "replicate": ("Replicate objects (Batch Replication)", [], "*Replication status:* `NONE or FAILED`", "640,000", []),
    "compute_checksum": (
        "Compute object checksums",
        ["*Algorithm:* `CRC64NVME`"],
        "*Manifest bucket:* `acme-batch-manifests`",
        "77,777",
        [],
    ),
    "update_encryption": (
        "Change object encryption",
        ["*Encryption:* `SSE-KMS`"],
        "*Manifest bucket:* `acme-batch-manifests`",
        "unknown",
        ["readers then need kms:Decrypt", "Object count unknown"],
    ),
}


@pytest.mark.parametrize("name", sorted(READS))
def test_the_request_shows_what_the_job_does_on_what_and_where(name: str) -> None:
    # given
    job, ref = load_job(name)
    title, parameters, manifest, count, warnings = READS[name]
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then: the facts a platform engineer decides on
    assert msg.blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "S3 Batch Operations job awaiting approval", "emoji": True},
    }
    facts = fields(msg)
    assert facts["*Operation*"] == title
    assert facts["*Objects*"] == count
    assert facts["*Account*"] == "`111122223333`"
    assert facts["*Region*"] == "`eu-west-1`"
    assert facts["*Priority*"] == "10"
    assert facts["*Created*"] == "14 Mar 2025 09:30:05 UTC"
    assert facts["*IAM role*"] == "`arn:aws:iam::111122223333:role/s3-batch-operations`"
    operation = block(msg, "operation")["text"]["text"]
    assert operation.startswith(f"*Operation: {title}*")
    for line in parameters:
        assert f"• {line}" in operation
    assert manifest in block(msg, "manifest")["text"]["text"]
    summary = block(msg, "summary")["text"]["text"]
    assert f"<{ref.console_url}|Open in the S3 console>" in summary
    assert f"*Job* `{ref.job_id}`" in summary
    if warnings:
        shown = block(msg, "warnings")["text"]["text"].split("\n")[1:]
        assert len(shown) == len(warnings)
        for words, line in zip(warnings, shown, strict=True):
            assert line.startswith("⚠️ ")
            assert words in line
    else:
        assert all(b.get("block_id") != "warnings" for b in msg.blocks)
    assert block(msg, "status")["elements"][0]["text"] == "Status now: Suspended — awaiting confirmation"
    assert msg.text.startswith(f"S3 Batch Operations job {ref.job_id} awaiting approval. {title}")
    assert_slack_accepts(msg)


def test_the_report_destination_and_scope_are_shown(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    facts = fields(render_request(job, ref, None, THRESHOLD))
    # then
    assert facts["*Completion report*"] == (
        "`s3://acme-batch-reports/batch-reports/job-c0ffee00-1234-4abc-8def-001122334455/` (failed tasks only)"
    )


def test_a_job_without_report_says_off_and_warns() -> None:
    # given
    job, ref = load_job("delete_tagging")
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then
    assert fields(msg)["*Completion report*"] == "Off"
    assert "No completion report" in block(msg, "warnings")["text"]["text"]


def test_the_status_line_says_when_s3_will_give_up_on_the_job(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    status = block(render_request(job, ref, None, THRESHOLD), "status")
    # then
    assert status["elements"][1]["text"] == "S3 fails the job if nobody confirms it by 13 Apr 2025 09:31:12 UTC."


def test_the_message_carries_metadata_naming_the_job(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then
    assert msg.metadata == {
        "event_type": "s3_batch_approval_request",
        "event_payload": {"job_id": ref.job_id, "account_id": "111122223333", "region": "eu-west-1"},
    }


def test_an_unknown_operation_is_named_and_flagged_not_fatal(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    job = job.model_copy(update={"operation": {"S3TeleportObjects": {"Speed": 9}}})
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then
    assert fields(msg)["*Operation*"] == "Unknown operation (S3TeleportObjects)"
    assert "Unknown operation S3TeleportObjects" in block(msg, "warnings")["text"]["text"]
    assert actions(msg)  # still decidable: the console link is there to check


# -- buttons --------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [None, RequestState.POSTING, RequestState.PENDING])
def test_a_pending_request_offers_approve_and_cancel(tagging: tuple[Job, JobRef], state: RequestState | None) -> None:
    # given
    job, ref = tagging
    pending = request(ref, state) if state else None
    # when
    msg = render_request(job, ref, pending, THRESHOLD)
    # then
    (buttons,) = actions(msg)
    approve, cancel = buttons["elements"]
    assert (approve["action_id"], approve["style"], approve["text"]["text"]) == (
        APPROVE_ACTION_ID,
        "primary",
        "Approve",
    )
    assert (cancel["action_id"], cancel["style"], cancel["text"]["text"]) == (CANCEL_ACTION_ID, "danger", "Cancel")
    for button in (approve, cancel):
        assert ButtonValue.model_validate_json(button["value"]).to_ref() == ref
    assert "confirm" not in cancel  # Cancel opens the reason modal instead


def test_the_approve_confirmation_names_the_job_and_its_object_count(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    (buttons,) = actions(render_request(job, ref, None, THRESHOLD))
    confirm = buttons["elements"][0]["confirm"]
    # then
    assert confirm["title"]["text"] == "Approve this job?"
    assert ref.job_id in confirm["text"]["text"]
    assert "48,211 objects" in confirm["text"]["text"]
    assert (confirm["confirm"]["text"], confirm["deny"]["text"]) == ("Approve", "Back")


def test_the_confirmation_says_when_the_count_is_unknown() -> None:
    # given
    job, ref = load_job("update_encryption")
    # when
    (buttons,) = actions(render_request(job, ref, None, THRESHOLD))
    # then
    assert "an unknown number of objects" in buttons["elements"][0]["confirm"]["text"]["text"]


def test_a_pending_request_for_a_job_that_moved_on_has_no_buttons(tagging: tuple[Job, JobRef]) -> None:
    # given: S3 already runs the job but the request is not closed yet
    job, ref = tagging
    job = job.model_copy(update={"status": "Active"})
    # when
    msg = render_request(job, ref, request(ref, RequestState.PENDING), THRESHOLD)
    # then
    assert not actions(msg)
    assert msg.blocks[0]["text"]["text"] == "S3 Batch Operations job no longer awaiting approval"
    assert "No longer awaiting confirmation: the job is Active" in block(msg, "outcome")["text"]["text"]
    assert block(msg, "status")["elements"][0]["text"] == "Status now: Active"


# -- the outcome ----------------------------------------------------------------------------------


def test_an_approved_request_shows_who_approved_when_and_what_s3_said(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    job = job.model_copy(update={"status": "Ready", "status_update_reason": "Approved by alice (UALICE001) via Slack"})
    done = request(
        ref, RequestState.APPROVED, decision="approve", decider=ALICE, decided_at=DECIDED_AT, s3_status="Ready"
    )
    # when
    msg = render_request(job, ref, done, THRESHOLD)
    # then
    assert not actions(msg)
    assert msg.blocks[0]["text"]["text"] == "✅ S3 Batch Operations job approved"
    assert block(msg, "outcome")["text"]["text"] == (
        "*Decision:* ✅ Approved\n*By:* <@UALICE001> (alice)\n*When:* 14 Mar 2025 11:02:33 UTC\n*S3 status at the decision:* Ready"
    )
    assert block(msg, "status")["elements"][0]["text"] == "Status now: Ready — Approved by alice (UALICE001) via Slack"
    assert msg.text.startswith(f"S3 Batch Operations job {ref.job_id}: Approved by alice.")
    assert_no_live_markup(msg, ref, allowed_mentions=("UALICE001",))
    assert_slack_accepts(msg)


def test_a_cancelled_request_shows_the_reason_escaped_and_quoted(tagging: tuple[Job, JobRef]) -> None:
    # given: a reason that tries to ping, link and add a fake line
    job, ref = tagging
    job = job.model_copy(update={"status": "Cancelled"})
    reason = "wrong prefix <!channel> <https://evil.example|docs> & more\n*Approved by security*"
    done = request(
        ref,
        RequestState.CANCELLED,
        decision="cancel",
        decider=ALICE,
        decided_at=DECIDED_AT,
        decision_reason=reason,
        s3_status="Cancelled",
    )
    # when
    msg = render_request(job, ref, done, THRESHOLD)
    # then
    outcome = block(msg, "outcome")["text"]["text"]
    assert outcome.startswith("*Decision:* 🛑 Cancelled\n*By:* <@UALICE001> (alice)\n")
    assert (
        "*Reason:*\n>wrong prefix &lt;!channel&gt; &lt;https://evil.example|docs&gt; &amp; more\n>*Approved by security*"
        in outcome
    )
    assert outcome.endswith("*S3 status at the decision:* Cancelled")
    assert msg.blocks[0]["text"]["text"] == "🛑 S3 Batch Operations job cancelled"
    assert_no_live_markup(msg, ref, allowed_mentions=("UALICE001",))


def test_a_closed_request_shows_the_outcome_note(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    job = job.model_copy(update={"status": "Ready"})
    closed = request(
        ref,
        RequestState.CLOSED,
        outcome_note=message.outside_slack_note("Ready"),
        decided_at=DECIDED_AT,
        s3_status="Ready",
    )
    # when
    msg = render_request(job, ref, closed, THRESHOLD)
    # then
    assert not actions(msg)
    assert block(msg, "outcome")["text"]["text"] == (
        "*Decision:* \u2139\ufe0f Confirmed outside Slack\n*When:* 14 Mar 2025 11:02:33 UTC\n*S3 status at the decision:* Ready"
    )
    assert msg.text.startswith(f"S3 Batch Operations job {ref.job_id}: Confirmed outside Slack.")


def test_a_request_being_decided_has_no_buttons_and_says_so(tagging: tuple[Job, JobRef]) -> None:
    # given: the job still awaits confirmation while the decider calls S3
    job, ref = tagging
    deciding = request(ref, RequestState.DECIDING, decision="approve", decider=ALICE, deciding_since=DECIDED_AT)
    # when
    msg = render_request(job, ref, deciding, THRESHOLD)
    # then
    assert not actions(msg)
    assert block(msg, "outcome")["text"]["text"] == (
        "*Decision:* ⏳ Deciding… (approving)\n*By:* <@UALICE001> (alice)\n*When:* 14 Mar 2025 11:02:33 UTC"
    )


def test_a_decider_name_cannot_inject_markup(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    mallory = Actor(user_id="<!channel>", name="<!here> *admin*\nApproved")
    done = request(ref, RequestState.APPROVED, decider=mallory, decided_at=DECIDED_AT, s3_status="Ready")
    # when
    msg = render_request(job.model_copy(update={"status": "Ready"}), ref, done, THRESHOLD)
    # then
    assert "*By:* &lt;!here&gt; *admin* Approved\n" in block(msg, "outcome")["text"]["text"]
    assert_no_live_markup(msg, ref)


# -- escaping and limits --------------------------------------------------------------------------


def test_escaping_follows_slacks_three_rules() -> None:
    assert escape_mrkdwn("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape_mrkdwn("&lt;") == "&amp;lt;"


def test_a_malicious_job_cannot_ping_link_or_add_lines() -> None:
    # given: <!channel>, a fake console link, formatting, a fake "approved" line and a bidi override
    job, ref = load_job("malicious")
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then
    assert_no_live_markup(msg, ref)
    summary = block(msg, "summary")["text"]["text"]
    assert summary.count("\n") == 1  # the description stays on its own single line
    description = summary.split("\n")[1]
    assert description.startswith("*Description:* `&lt;!channel&gt; urgent &lt;https://evil.example/login|")
    assert description.endswith("`")  # inside code: no bold, emoji codes or links
    assert description.count("`") == 2  # its own backticks became look-alikes
    assert "\u202e" not in readable(msg)
    assert "• *Tags:* `&lt;!here&gt;=&lt;@U0ADMIN1&gt;, a&amp;b=x&gt;y, line break=\u02cbtick\u02cb`" in readable(msg)
    assert "`&lt;!everyone&gt;/list.csv`" in block(msg, "manifest")["text"]["text"]
    assert fields(msg)["*IAM role*"] == "`arn:aws:iam::111122223333:role/&lt;https://evil.example|admin&gt;`"
    assert all(t.get("verbatim") is True for t in _text_objects(msg.blocks) if t["type"] == "mrkdwn")
    assert_slack_accepts(msg)


def _text_objects(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text"):
            yield node
        for value in node.values():
            yield from _text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _text_objects(item)


def test_a_huge_description_and_sixty_tags_stay_within_block_kit_limits(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    tags = [{"Key": f"cost-centre-{i:02}", "Value": "<&>" * 20} for i in range(60)]
    job = job.model_copy(update={"description": "&<>" * 1700, "operation": {"S3PutObjectTagging": {"TagSet": tags}}})
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then
    summary = block(msg, "summary")["text"]["text"]
    assert summary.endswith("…`")
    assert "&amp;&lt;&gt;" in summary
    assert not re.search(r"&(a|am|amp|l|lt|g|gt)?…", summary)  # never cut inside an escape
    tags_line = block(msg, "operation")["text"]["text"].split("\n")[1]
    assert tags_line.startswith("• *Tags:* `60 tags: cost-centre-00=&lt;&amp;&gt;")
    assert tags_line.endswith("…`")
    assert_slack_accepts(msg)
    assert all(slack_len(b["text"]["text"]) <= 3000 for b in msg.blocks if b["type"] == "section" and "text" in b)
    assert slack_len(msg.text) < 4000


@pytest.mark.parametrize("unit", [FAMILY, FLAG, "e\u0301", "👍🏽", "a"])
def test_cutting_never_splits_an_emoji_a_flag_or_an_accent(unit: str, tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    job = job.model_copy(update={"description": "x" + unit * 2000})
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then
    description = block(msg, "summary")["text"]["text"].split("*Description:* `")[1].removesuffix("…`")
    assert description.encode("utf-8")  # no lone surrogate
    assert description[1:] == unit * ((len(description) - 1) // len(unit))  # whole units only
    assert_slack_accepts(msg)


def test_clip_counts_escapes_and_never_exceeds_the_limit() -> None:
    for limit in range(1, 40):
        out = clip("a&b<c" * 10, limit, escaped=True)
        assert slack_len(escape_mrkdwn(out)) <= limit


def test_lone_surrogates_and_control_characters_are_cleaned(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    job = job.model_copy(update={"description": "bad \ud800 surrogate\x00\tand\x1b[31m escape"})
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then
    json.dumps(msg.model_dump()).encode("utf-8")
    assert "*Description:* `bad \ufffd surrogate and [31m escape`" in block(msg, "summary")["text"]["text"]


# -- validate_message -----------------------------------------------------------------------------


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(**changes: Any) -> dict[str, Any]:
    base = {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "Go"}, "value": "v"}
    return {**base, **changes}


def confirm(**changes: str) -> dict[str, Any]:
    parts = {"title": "T", "text": "X", "confirm": "Yes", "deny": "No"} | changes
    return {key: {"type": "plain_text", "text": value} for key, value in parts.items()}


@pytest.mark.parametrize(
    ("blocks", "text", "words"),
    [
        ([section("x")] * 51, "t", "51 blocks"),
        ([section("x" * 3001)], "t", "block 0 (section) text is 3001 characters"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "t", "11 fields"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}], "t", "field 0 is 2001"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "t", "Slack allows 150"),
        ([{"type": "actions", "elements": [button(text={"type": "plain_text", "text": "b" * 76})]}], "t", "allows 75"),
        ([{"type": "actions", "elements": [button(value="v" * 2001)]}], "t", "value exceeds 2000"),
        ([{"type": "actions", "elements": [button(action_id="a" * 256)]}], "t", "action_id exceeds 255"),
        ([{"type": "actions", "elements": [button(confirm=confirm(title="t" * 101))]}], "t", "confirm title"),
        ([{"type": "actions", "elements": [button(confirm=confirm(text="t" * 301))]}], "t", "confirm text"),
        ([{"type": "actions", "elements": [button(confirm=confirm(confirm="t" * 31))]}], "t", "confirm button"),
        ([{"type": "actions", "elements": [button(confirm=confirm(deny="t" * 31))]}], "t", "deny button"),
        ([section("ok")], "t" * 4000, "fallback text is 4000 characters"),
        ([section("😀" * 1501)], "t", "text is 3002 characters"),  # emoji count twice, as in UTF-16
    ],
)
def test_validate_message_names_the_limit_that_is_broken(blocks: list[dict[str, Any]], text: str, words: str) -> None:
    # when
    with pytest.raises(MessageTooLarge) as raised:
        validate_message(SlackMessage(text=text, blocks=blocks))
    # then
    assert words in str(raised.value)


def test_validate_message_rejects_a_button_style_slack_does_not_know() -> None:
    with pytest.raises(ValueError, match="primary or danger"):
        validate_message(SlackMessage(text="t", blocks=[{"type": "actions", "elements": [button(style="green")]}]))


def test_validate_message_accepts_limits_exactly() -> None:
    validate_message(
        SlackMessage(
            text="t" * 3999,
            blocks=[section("x" * 3000)] * 49
            + [{"type": "actions", "elements": [button(value="v" * 2000, confirm=confirm(text="t" * 300))]}],
        )
    )


# -- thread replies -------------------------------------------------------------------------------


def progress(total: int, succeeded: int, failed: int) -> ProgressSummary:
    return ProgressSummary.model_validate(
        {"TotalNumberOfTasks": total, "NumberOfTasksSucceeded": succeeded, "NumberOfTasksFailed": failed}
    )


def test_a_running_job_gets_a_short_reply(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    reply = render_status_reply(job.model_copy(update={"status": "Active"}), ref)
    # then
    assert reply is not None
    assert reply.text == f"Job is running: S3 Batch Operations job {ref.job_id}"
    assert reply.blocks[0]["text"]["text"] == "▶️ *Job is running* on 48,211 objects."
    assert f"<{ref.console_url}|Open in the S3 console>" in reply.blocks[1]["elements"][0]["text"]


def test_a_complete_job_reply_counts_successes_failures_and_points_at_the_report(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    job = job.model_copy(
        update={
            "status": "Complete",
            "progress": progress(48_211, 48_200, 11),
            "termination_date": datetime(2025, 3, 14, 12, 0, tzinfo=UTC),
        }
    )
    # when
    reply = render_status_reply(job, ref)
    # then
    assert reply is not None
    assert reply.blocks[0]["text"]["text"] == (
        "⚠️ *Job complete with failures*: 48,200 succeeded, 11 failed (of 48,211).\n"
        f"Completion report: `s3://acme-batch-reports/batch-reports/job-{ref.job_id}/`\n"
        "Finished 14 Mar 2025 12:00 UTC."
    )


def test_a_clean_completion_says_so(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    # when
    reply = render_status_reply(job.model_copy(update={"status": "Complete", "progress": progress(3, 3, 0)}), ref)
    # then
    assert reply is not None
    assert reply.blocks[0]["text"]["text"].startswith("✅ *Job complete*: 3 succeeded, 0 failed (of 3).")


def test_a_failed_job_reply_lists_the_failure_reasons_escaped(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    reasons = [
        FailureReason.model_validate({"FailureCode": "AccessDenied", "FailureReason": "Role cannot read <!channel>"}),
        FailureReason.model_validate({"FailureReason": "Manifest ETag mismatch"}),
    ]
    # when
    reply = render_status_reply(job.model_copy(update={"status": "Failed", "failure_reasons": reasons}), ref)
    # then
    assert reply is not None
    assert reply.blocks[0]["text"]["text"] == (
        "❌ *Job failed*.\n• `AccessDenied` Role cannot read &lt;!channel&gt;\n• Manifest ETag mismatch"
    )
    assert_slack_accepts(reply)


def test_a_cancelled_job_reply_gives_the_status_update_reason(tagging: tuple[Job, JobRef]) -> None:
    # given
    job, ref = tagging
    job = job.model_copy(
        update={"status": "Cancelled", "status_update_reason": "Cancelled by alice (UALICE001) via Slack: <wrong>"}
    )
    # when
    reply = render_status_reply(job, ref)
    # then
    assert reply is not None
    assert reply.blocks[0]["text"]["text"] == (
        "🛑 *Job cancelled*.\nReason: Cancelled by alice (UALICE001) via Slack: &lt;wrong&gt;"
    )


@pytest.mark.parametrize("status", ["New", "Preparing", "Suspended", "Ready", "Pausing", "Completing", "Cancelling"])
def test_other_statuses_get_no_reply(tagging: tuple[Job, JobRef], status: str) -> None:
    job, ref = tagging
    assert render_status_reply(job.model_copy(update={"status": status}), ref) is None


# -- the reason modal -----------------------------------------------------------------------------


def test_the_reason_modal_asks_why_and_carries_the_job(tagging: tuple[Job, JobRef]) -> None:
    # given
    _, ref = tagging
    metadata = ModalMetadata(job=ref, channel="C0APPROVALS", message_ts="1700000000.000100")
    # when
    view = render_reason_modal(metadata, ref.job_id)
    # then
    assert view["type"] == "modal"
    assert view["callback_id"] == REASON_MODAL_CALLBACK_ID
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == (
        "Cancel S3 job",
        "Cancel job",
        "Back",
    )
    assert ModalMetadata.model_validate_json(view["private_metadata"]) == metadata
    (field,) = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["block_id"] == REASON_BLOCK_ID
    assert field["label"]["text"] == "Why cancel this job?"
    assert field["element"]["type"] == "plain_text_input"
    assert field["element"]["action_id"] == REASON_INPUT_ACTION_ID
    assert field["element"]["multiline"] is True
    assert ref.job_id in view["blocks"][0]["text"]["text"]
    View(**view).to_dict()  # slack_sdk's own view limits


def test_the_longest_reason_the_modal_allows_fits_s3s_status_update_reason(tagging: tuple[Job, JobRef]) -> None:
    # given: the longest display name kept and a long Slack ID
    _, ref = tagging
    limit = render_reason_modal(ModalMetadata(job=ref), ref.job_id)["blocks"][1]["element"]["max_length"]
    actor = Actor(user_id="W" + "9" * 15, name="n" * MAX_NAME)
    why = "y" * limit
    # when
    reason = status_update_reason("cancel", actor, why)
    # then
    assert reason.endswith(": " + why)
    assert len(reason) <= MAX_REASON
    assert limit >= 100


# -- ephemeral notices ----------------------------------------------------------------------------


def test_a_second_click_is_told_who_approved_and_when(tagging: tuple[Job, JobRef]) -> None:
    # given
    _, ref = tagging
    done = request(ref, RequestState.APPROVED, decider=ALICE, decided_at=DECIDED_AT)
    # then
    assert message.already_decided_text(done) == (
        f"Job `{ref.job_id}` was already approved by <@UALICE001> (alice) on 14 Mar 2025 11:02:33 UTC. "
        "Nothing was changed."
    )


def test_a_second_click_after_a_cancel_sees_the_reason_escaped(tagging: tuple[Job, JobRef]) -> None:
    # given
    _, ref = tagging
    done = request(ref, RequestState.CANCELLED, decider=ALICE, decided_at=DECIDED_AT, decision_reason="<!here> oops")
    # then
    assert "Reason: &lt;!here&gt; oops" in message.already_decided_text(done)


def test_a_click_during_a_decision_is_told_one_is_in_progress(tagging: tuple[Job, JobRef]) -> None:
    # given
    _, ref = tagging
    deciding = request(ref, RequestState.DECIDING, decision="cancel", decider=ALICE)
    # then
    assert message.already_decided_text(deciding).startswith(
        f"A decision on job `{ref.job_id}` is already in progress (<@UALICE001> (alice) chose to cancel)."
    )


def test_a_click_on_a_closed_request_gets_the_outcome_note(tagging: tuple[Job, JobRef]) -> None:
    _, ref = tagging
    closed = request(ref, RequestState.CLOSED, outcome_note="Cancelled outside Slack")
    assert message.already_decided_text(closed) == (
        f"Job `{ref.job_id}` is no longer awaiting approval: Cancelled outside Slack. Nothing was changed."
    )


@pytest.mark.parametrize(
    ("status", "note", "detail"),
    [
        ("Ready", "Confirmed outside Slack", "it is Ready (confirmed outside Slack)"),
        ("Complete", "Confirmed outside Slack", "it is Complete (confirmed outside Slack)"),
        ("Cancelled", "Cancelled outside Slack", "it is Cancelled (cancelled outside Slack)"),
        ("Failed", "Job is Failed: it failed before anyone confirmed it", "it is Failed (it failed before"),
        ("Mystery", "Job is Mystery, no longer awaiting confirmation", "it is Mystery."),
    ],
)
def test_a_job_that_moved_on_is_explained(status: str, note: str, detail: str) -> None:
    assert message.outside_slack_note(status) == note
    text = message.job_moved_on_text(status, "job-0001")
    assert text.startswith(f"Job `job-0001` is no longer awaiting confirmation: {detail}")
    assert text.endswith("Nothing was changed.")


def test_the_other_notices_say_what_happened_and_what_to_do() -> None:
    assert "not an approver" in message.not_an_approver_text("job-0001")
    assert message.decision_failed_text("job-0001", "S3 <throttled>") == (
        "Your decision on job `job-0001` could not be applied: S3 &lt;throttled&gt;. The request is still open: try again."
    )
    assert message.reason_required_error() == {REASON_BLOCK_ID: "Please say why you are cancelling this job."}
    assert "click Cancel again" in message.modal_failed_text("job-0001")
    assert "not found in S3" in message.job_not_found_text("job-0001")
    assert "no approval request on record" in message.no_request_text("job-0001")


def test_a_copy_with_every_parameter_at_its_longest_still_fits(tagging: tuple[Job, JobRef]) -> None:
    # given: botocore's maximum lengths for every copy parameter, and then some
    job, ref = tagging
    grants = [{"Grantee": {"TypeIdentifier": "id", "Identifier": "i" * 1024}, "Permission": "READ"} for _ in range(100)]
    copy = {
        "TargetResource": "arn:aws:s3:::" + "b" * 115,
        "TargetKeyPrefix": "<p>" * 341,
        "RedirectLocation": "r" * 2048,
        "SSEAwsKmsKeyId": "k" * 2000,
        "AccessControlGrants": grants,
        "NewObjectTagging": [{"Key": "k" * 128, "Value": "&" * 256} for _ in range(10)],
        "NewObjectMetadata": {"UserMetadata": {f"m{i}": "v" * 1024 for i in range(50)}, "CacheControl": "c" * 1024},
        "MetadataDirective": "REPLACE",
        "StorageClass": "DEEP_ARCHIVE",
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": "2099-01-01T00:00:00Z",
    }
    job = job.model_copy(
        update={"operation": {"S3PutObjectCopy": copy}, "role_arn": "arn:aws:iam::1:role/" + "r" * 5000}
    )
    # when
    msg = render_request(job, ref, None, THRESHOLD)
    # then
    operation = block(msg, "operation")["text"]["text"]
    assert slack_len(operation) <= 3000
    assert re.search(r"\n… and \d+ more lines?$", operation)
    assert_slack_accepts(msg)
