"""Properties of the StatusUpdateReason: within 256, every Slack ID kept in order, heads never confused."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from approvals.domain.reasons import (
    LONGEST_SLACK_ID,
    MAX_REASON,
    decider_of,
    policy_of,
    policy_reason,
    recorded_by,
    status_update_reason,
)
from approvals.models.policy import MAX_QUORUM, RULE_NAME
from approvals.models.records import Actor

# Slack user IDs as Slack writes them (9 to 11 characters today), up to the longest we plan for.
slack_ids = st.from_regex(rf"[UW][A-Z0-9]{{2,{LONGEST_SLACK_ID - 1}}}", fullmatch=True)
# Display names: any text, with emoji sequences, joiners, marks, brackets and our own separators mixed in.
pieces = st.sampled_from(
    [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\U0001f44d\U0001f3fd",
        "\U0001f1eb\U0001f1f7",
        "e\u0301",
        "\u200d",
        "(",
        ")",
        "\uff08",
        ", ",
        " via Slack",
        ": ",
        "policy deny-all: ",
        "(U0GINA001)",
        "\u202e",
        "\n",
    ]
)
names = st.lists(st.one_of(st.text(max_size=40), pieces), max_size=12).map("".join)
whys = st.none() | st.lists(st.one_of(st.text(max_size=200), pieces), max_size=8).map("".join)
rule_names = st.from_regex(RULE_NAME, fullmatch=True)


@st.composite
def quorums(draw: st.DrawFn) -> list[Actor]:
    ids = draw(st.lists(slack_ids, min_size=1, max_size=MAX_QUORUM, unique=True))
    return [Actor(user_id=user_id, name=draw(names)) for user_id in ids]


@given(st.sampled_from(["approve", "cancel"]), quorums(), whys)
def test_a_reason_fits_256_and_reads_back_every_slack_id_in_order(
    decision: str, people: list[Actor], why: str | None
) -> None:
    # when
    reason = status_update_reason(decision, people, why)  # type: ignore[arg-type]
    # then
    assert 0 < len(reason) <= MAX_REASON
    found = decider_of(reason)
    assert found is not None, reason
    assert found[0] == decision
    assert [actor.user_id for actor in found[1]] == [actor.user_id for actor in people]
    assert recorded_by(reason, decision, people)  # type: ignore[arg-type]
    assert policy_of(reason) is None
    assert "\n" not in reason
    assert "\u202e" not in reason


@given(quorums(), st.text(max_size=300))
def test_a_cancel_reason_never_changes_who_the_head_names(people: list[Actor], why: str) -> None:
    # when
    reason = status_update_reason("cancel", people, why)
    # then: whatever the reason says, the head names exactly these people
    found = decider_of(reason)
    assert found is not None
    assert tuple(actor.user_id for actor in found[1]) == tuple(actor.user_id for actor in people)


@given(st.sampled_from(["approve", "cancel"]), rule_names, whys)
def test_a_policy_reason_fits_256_names_its_rule_and_never_reads_as_a_person(
    decision: str, rule: str, why: str | None
) -> None:
    # when
    reason = policy_reason(decision, rule, why)  # type: ignore[arg-type]
    # then
    assert len(reason) <= MAX_REASON
    assert policy_of(reason) == (decision, rule)
    assert decider_of(reason) is None


@given(st.text(max_size=300))
def test_text_from_outside_is_never_both_a_persons_and_a_policys(reason: str) -> None:
    assert decider_of(reason) is None or policy_of(reason) is None
