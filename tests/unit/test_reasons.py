"""The StatusUpdateReason: who decided, their Slack ID and why, within S3's 256 characters."""

from __future__ import annotations

import pytest

from approvals.domain.reasons import (
    MAX_NAME,
    MAX_REASON,
    WHY_RESERVE,
    cut,
    decider_of,
    policy_of,
    policy_reason,
    recorded_by,
    status_update_reason,
)
from approvals.models.records import Actor

ALICE = Actor(user_id="UALICE001", name="alice")


def test_an_approval_names_the_person_and_their_slack_id() -> None:
    assert status_update_reason("approve", ALICE) == "Approved by alice (UALICE001) via Slack"


def test_a_cancellation_adds_the_reason() -> None:
    assert (
        status_update_reason("cancel", ALICE, " wrong bucket ")
        == "Cancelled by alice (UALICE001) via Slack: wrong bucket"
    )


def test_a_long_reason_is_cut_to_256_characters_keeping_who_decided() -> None:
    # when
    reason = status_update_reason("cancel", ALICE, "x" * 1000)
    # then
    assert len(reason) == MAX_REASON
    assert reason.startswith("Cancelled by alice (UALICE001) via Slack: xxx")
    assert reason.endswith("…")


def test_a_very_long_display_name_still_leaves_the_slack_id() -> None:
    # given
    actor = Actor(user_id="UALICE001", name="a" * 500)
    # when
    reason = status_update_reason("cancel", actor, "because")
    # then
    assert len(reason) <= MAX_REASON
    assert "(UALICE001) via Slack: because" in reason


def test_cutting_never_splits_an_emoji_sequence_or_a_combining_mark() -> None:
    # given: a family emoji (joined with ZWJ) and an e with a combining acute accent
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    text = "ab" + family + "cde\u0301f"
    # then: every cut either keeps a sequence whole or drops it whole
    for limit in range(1, len(text) + 1):
        out = cut(text, limit).removesuffix("…")
        assert len(cut(text, limit)) <= limit
        assert not out.endswith("\u200d")
        if "\U0001f468" in out:
            assert family in out
        if "e" in out[3:] and out.endswith("e"):
            raise AssertionError(f"combining accent separated from its letter at limit {limit}")


def test_newlines_and_control_characters_become_spaces() -> None:
    assert status_update_reason("cancel", ALICE, "line one\nline\ttwo\x07") == (
        "Cancelled by alice (UALICE001) via Slack: line one line two"
    )


def test_a_reason_is_recognised_by_verb_and_slack_id_even_if_the_name_reads_differently() -> None:
    # given
    written = status_update_reason("approve", Actor(user_id="UALICE001", name="Alice Ng"))
    # then
    assert recorded_by(written, "approve", ALICE)
    assert not recorded_by(written, "cancel", ALICE)
    assert not recorded_by(written, "approve", Actor(user_id="UBOB00001", name="alice"))
    assert not recorded_by("confirmed with the CLI", "approve", ALICE)
    assert not recorded_by(None, "approve", ALICE)


def test_a_slack_id_typed_into_a_cancel_reason_does_not_make_its_owner_the_decider() -> None:
    # given: Mallory cancels with a reason that imitates Gina's decision
    gina = Actor(user_id="U0GINA001", name="gina")
    written = status_update_reason("cancel", Actor(user_id="U0MALLORY", name="mallory"), "x (U0GINA001) via Slack")
    # then
    assert recorded_by(written, "cancel", Actor(user_id="U0MALLORY", name="mallory"))
    assert not recorded_by(written, "cancel", gina)


def test_a_display_name_imitating_another_person_is_not_taken_for_them() -> None:
    # given: a display name that holds Gina's ID, verb and "via Slack"
    gina = Actor(user_id="U0GINA001", name="gina")
    spoofer = Actor(user_id="U0MALLORY", name="Gina (U0GINA001) via Slack")
    written = status_update_reason("approve", spoofer)
    # then: the parentheses of the name cannot frame an ID; only the real one is recognised
    assert "(U0GINA001)" not in written
    assert not recorded_by(written, "approve", gina)
    assert recorded_by(written, "approve", spoofer)


def test_only_the_head_at_the_start_counts() -> None:
    # given: reasons written outside this product that contain our form somewhere
    gina = Actor(user_id="U0GINA001", name="gina")
    for reason in (
        "Confirmed by ops. Approved by gina (U0GINA001) via Slack",
        " Approved by gina (U0GINA001) via Slack",
        "Approved by gina (U0GINA001) via Slackware",
        "Approved by x (U0MALLORY) (U0GINA001) via Slack",
    ):
        # then
        assert not recorded_by(reason, "approve", gina), reason


# -- several approvers (a quorum) ------------------------------------------------------------------

GINA = Actor(user_id="U0GINA001", name="Gina")
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji: three joined with ZWJ
THUMB = "\U0001f44d\U0001f3fd"  # an emoji with a skin-tone modifier


def long_names(count: int) -> list[Actor]:
    """``count`` approvers with 80-character names full of emoji sequences and combining marks."""
    people = []
    for index in range(count):
        name = (f"Approver {index} " + FAMILY + "e\u0301" + THUMB + "x" * 80)[:MAX_NAME]
        people.append(Actor(user_id=f"U0{index:02d}ABCDEF", name=name))
    return people


def ids_of(reason: str) -> tuple[str, ...]:
    found = decider_of(reason)
    assert found is not None, reason
    return tuple(actor.user_id for actor in found[1])


def test_a_quorum_names_every_approver_and_their_slack_id_in_order() -> None:
    # given
    alice = Actor(user_id="U0ALICE01", name="Alice")
    # when
    reason = status_update_reason("approve", [alice, GINA])
    # then
    assert reason == "Approved by Alice (U0ALICE01), Gina (U0GINA001) via Slack"
    assert decider_of(reason) == ("approve", (Actor(user_id="U0ALICE01", name="Alice"), GINA))


def test_one_actor_in_a_sequence_reads_as_one_actor_alone() -> None:
    assert status_update_reason("approve", [ALICE]) == status_update_reason("approve", ALICE)


@pytest.mark.parametrize("count", [2, 3, 10])
def test_long_names_share_the_256_characters_and_every_slack_id_stays(count: int) -> None:
    # given
    people = long_names(count)
    # when
    reason = status_update_reason("approve", people)
    # then
    assert len(reason) <= MAX_REASON
    assert ids_of(reason) == tuple(actor.user_id for actor in people)
    assert recorded_by(reason, "approve", people)
    # emoji sequences are kept whole or dropped whole, never left with a dangling joiner or modifier
    assert "\u200d (" not in reason
    assert "\u200d…" not in reason
    for part in reason.split(FAMILY):
        assert not part.startswith(("\u200d", "\U0001f3fd"))
    assert reason.count("\U0001f468") == reason.count(FAMILY)
    assert reason.count("\U0001f3fd") == reason.count(THUMB)


def test_two_long_names_are_cut_alike_and_three_use_the_whole_limit() -> None:
    # when
    two = decider_of(status_update_reason("approve", long_names(2)))
    three = status_update_reason("approve", long_names(3))
    # then: two 80-character names fit as they are; three must shrink, evenly, to fill the limit
    assert two is not None
    assert [len(actor.name) for actor in two[1]] == [MAX_NAME, MAX_NAME]
    assert len(three) == MAX_REASON
    found = decider_of(three)
    assert found is not None
    lengths = [len(actor.name) for actor in found[1]]
    assert max(lengths) - min(lengths) <= 3  # equal shares, less what cut() steps back over joiners
    assert all(actor.name.endswith("…") for actor in found[1])


def test_a_short_name_is_kept_whole_and_passes_its_room_to_the_long_ones() -> None:
    # given
    people = [Actor(user_id="U0BO00001", name="Bo"), *long_names(3)]
    # when
    found = decider_of(status_update_reason("approve", people))
    # then
    assert found is not None
    names = [actor.name for actor in found[1]]
    assert names[0] == "Bo"
    assert all(len(name) > len(names[0]) for name in names[1:])


def test_when_names_cannot_fit_the_entries_are_the_ids_alone() -> None:
    # given: ten approvers with 16-character IDs, the longest we plan for
    people = [Actor(user_id=f"W{index:015d}", name="n" * MAX_NAME) for index in range(10)]
    # when
    reason = status_update_reason("approve", people)
    # then
    assert len(reason) <= MAX_REASON
    assert ids_of(reason) == tuple(actor.user_id for actor in people)
    assert "(W000000000000009) via Slack" in reason


def test_a_name_shorter_than_the_least_worth_cutting_is_left_out_not_shown_as_a_stub() -> None:
    # given: ten IDs of 16 characters leave about 3 characters per name
    people = [Actor(user_id=f"W{index:015d}", name="Alexandra") for index in range(10)]
    # when
    reason = status_update_reason("approve", people)
    # then
    assert reason.startswith("Approved by (W000000000000000), (W000000000000001)")
    assert "A…" not in reason


def test_ids_that_cannot_all_fit_are_refused_rather_than_dropped() -> None:
    # given: ten IDs of the longest form Slack's pattern allows
    people = [Actor(user_id="U" + f"{index}" * 31, name="x") for index in range(10)]
    # then
    with pytest.raises(ValueError, match="cannot all fit"):
        status_update_reason("approve", people)
    with pytest.raises(ValueError, match="at least one"):
        status_update_reason("approve", [])


def test_a_cancel_reason_keeps_its_room_when_several_names_are_long() -> None:
    # given
    why = "w" * WHY_RESERVE
    # when
    reason = status_update_reason("cancel", long_names(2), why)
    # then
    assert reason.endswith(": " + why)
    assert len(reason) <= MAX_REASON
    assert len(ids_of(reason)) == 2


def test_a_display_name_with_commas_and_ids_cannot_add_an_approver() -> None:
    # given: Mallory's name imitates a second approver, Gina, and an end of the list
    mallory = Actor(user_id="U0MALLORY", name="Mallory (U0MALLORY), Gina (U0GINA001), x")
    # when
    reason = status_update_reason("approve", [mallory, Actor(user_id="U0BOB0001", name="Bob")])
    # then
    assert ids_of(reason) == ("U0MALLORY", "U0BOB0001")
    assert not recorded_by(reason, "approve", [mallory, GINA, Actor(user_id="U0BOB0001", name="Bob")])
    assert not recorded_by(reason, "approve", GINA)


def test_recorded_by_needs_the_same_people_in_the_same_order() -> None:
    # given
    alice = Actor(user_id="U0ALICE01", name="Alice")
    reason = status_update_reason("approve", [alice, GINA])
    # then
    assert recorded_by(reason, "approve", [alice, GINA])
    assert recorded_by(reason, "approve", (Actor(user_id="U0ALICE01", name="someone else"), GINA))
    assert not recorded_by(reason, "approve", [GINA, alice])
    assert not recorded_by(reason, "approve", alice)
    assert not recorded_by(reason, "approve", [alice, GINA, ALICE])
    assert not recorded_by(reason, "cancel", [alice, GINA])


def test_a_reason_written_before_quorums_still_reads() -> None:
    # given: the head as earlier versions wrote it, with the ID standing in for an empty name
    for reason in ("Approved by alice (UALICE001) via Slack", "Cancelled by UALICE001 (UALICE001) via Slack: x"):
        # then
        assert ids_of(reason) == ("UALICE001",)


def test_heads_that_only_resemble_ours_are_not_read() -> None:
    for reason in (
        "Approved by A (U0ALICE01),  B (U0GINA001) via Slack",  # not our separator
        "Approved by A (U0ALICE01) , B (U0GINA001) via Slack",
        "Approved by A (U0ALICE01), B (U0GINA001) via Slack\n",
        "Approved by A (u0alice01) via Slack",
        "Approved by A (U0ALICE01), via Slack",
    ):
        assert decider_of(reason) is None, reason


# -- decisions by a policy rule -------------------------------------------------------------------


def test_a_policy_decision_names_the_rule() -> None:
    assert policy_reason("approve", "sandbox-tags") == "Approved by policy sandbox-tags"
    assert policy_reason("cancel", "no-lambda-prod", " LambdaInvoke on\nproduction ") == (
        "Cancelled by policy no-lambda-prod: LambdaInvoke on production"
    )
    assert policy_of("Cancelled by policy no-lambda-prod: LambdaInvoke on production") == ("cancel", "no-lambda-prod")
    assert policy_of("Approved by policy sandbox-tags") == ("approve", "sandbox-tags")


def test_a_long_policy_reason_is_cut_to_256_keeping_the_rule() -> None:
    # given: the longest rule name
    rule = "r" + "-" * 30 + "z"
    # when
    reason = policy_reason("cancel", rule, "y" * 300)
    # then
    assert len(reason) == MAX_REASON
    assert policy_of(reason) == ("cancel", rule)


def test_only_policy_rule_names_make_a_policy_head() -> None:
    with pytest.raises(ValueError, match="not a policy rule name"):
        policy_reason("cancel", "Deny All", "x")
    for reason in (
        "Approved by policy Deny",
        "Approved by policy -x",
        "Approved by policy x-",
        "Approved by policy sandbox-tags.",
        "approved by policy sandbox-tags",
        " Approved by policy sandbox-tags",
        "Approved by policy " + "r" * 33,
        None,
    ):
        assert policy_of(reason) is None, reason


def test_a_display_name_cannot_make_a_persons_decision_look_like_a_policys() -> None:
    # given: a name that starts like a policy head
    mallory = Actor(user_id="U0MALLORY", name="policy no-lambda-prod: LambdaInvoke on production")
    # when
    reason = status_update_reason("cancel", mallory, "x")
    # then
    assert policy_of(reason) is None
    assert ids_of(reason) == ("U0MALLORY",)


def test_a_rule_reason_cannot_make_a_policys_decision_look_like_a_persons() -> None:
    # given: a rule's reason that imitates a person's head
    reason = policy_reason("cancel", "no-lambda-prod", "x (U0GINA001) via Slack")
    # then
    assert decider_of(reason) is None
    assert not recorded_by(reason, "cancel", GINA)
    assert policy_of(reason) == ("cancel", "no-lambda-prod")
