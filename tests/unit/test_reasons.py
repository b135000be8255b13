"""The StatusUpdateReason: who decided, their Slack ID and why, within S3's 256 characters."""

from __future__ import annotations

from approvals.domain.reasons import MAX_REASON, cut, recorded_by, status_update_reason
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
