"""Principal → Slack user: explicit mappings first, then Identity Center emails, else nobody."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.domain.identity import IdentityResolver, sso_email
from approvals.domain.ports import ChatUnavailable
from approvals.models.events import CreateJobCall
from approvals.models.policy import Identities
from approvals.models.records import Requester

ACCOUNT = "111122223333"
SSO = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_DataEngineer_3f9a1c2b4d5e6f70"
ALICE_SESSION = f"{SSO}/alice@example.com"


class Directory:
    """Slack's users.lookupByEmail: the users it knows, every email it was asked, and a switch to fail."""

    def __init__(self, users: dict[str, str] | None = None, *, down: bool = False) -> None:
        self.users = users or {}
        self.down = down
        self.asked: list[str] = []

    def __call__(self, email: str) -> str | None:
        self.asked.append(email)
        if self.down:
            raise ChatUnavailable("users.lookupByEmail: ratelimited")
        return self.users.get(email)


def call_by(principal: str, kind: Any = "AssumedRole", issuer: str | None = "sso") -> CreateJobCall:
    """A CreateJob call by ``principal``; an Identity Center session's issuer is its reserved-path role
    (``issuer="sso"``, the default) unless another issuer (or None) is given."""
    if issuer == "sso":
        role = principal.split(":assumed-role/", 1)[-1].split("/", 1)[0] if ":assumed-role/" in principal else ""
        partition = principal.split(":", 2)[1] if principal.startswith("arn:") else "aws"
        issuer = (
            f"arn:{partition}:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{role}"
            if role.startswith("AWSReservedSSO_")
            else None
        )
    return CreateJobCall(
        job_id="job-12345",
        account_id=ACCOUNT,
        region="eu-west-1",
        event_time=datetime(2026, 11, 30, tzinfo=UTC),
        principal_arn=principal,
        principal_type=kind,
        session_issuer_arn=issuer,
    )


def identities(*entries: tuple[str, str], email_lookup: bool = True) -> Identities:
    return Identities(
        email_lookup=email_lookup,
        map=[{"principal": p, "slack_user": u} for p, u in entries],  # type: ignore[misc]
    )


def test_an_identity_center_session_named_by_email_is_looked_up_in_slack() -> None:
    # given
    directory = Directory({"alice@example.com": "U0ALICE"})
    resolver = IdentityResolver(identities(), directory)

    # when
    requester = resolver.resolve(call_by(ALICE_SESSION), "event")

    # then
    assert requester == Requester(
        principal_arn=ALICE_SESSION,
        principal_type="AssumedRole",
        slack_user_id="U0ALICE",
        mapped_by="email",
        found_in="event",
    )
    assert directory.asked == ["alice@example.com"]


def test_an_explicit_mapping_wins_over_the_email_and_slack_is_not_asked() -> None:
    # given
    directory = Directory({"alice@example.com": "U0ALICE"})
    resolver = IdentityResolver(identities((f"{SSO}/alice@*", "U0ALICEADMIN")), directory)

    # when
    requester = resolver.resolve(call_by(ALICE_SESSION), "history")

    # then
    assert (requester.slack_user_id, requester.mapped_by, requester.found_in) == ("U0ALICEADMIN", "mapping", "history")
    assert directory.asked == []


def test_the_first_matching_entry_wins() -> None:
    resolver = IdentityResolver(
        identities((f"arn:aws:iam::{ACCOUNT}:user/*", "U0FIRST"), (f"arn:aws:iam::{ACCOUNT}:user/bob", "U0BOB")),
        Directory(),
    )
    assert resolver.resolve(call_by(f"arn:aws:iam::{ACCOUNT}:user/bob", "IAMUser"), "event").slack_user_id == "U0FIRST"


def test_an_assumed_role_is_mapped_by_the_role_behind_the_session() -> None:
    # given
    role = f"arn:aws:iam::{ACCOUNT}:role/data-loader"
    resolver = IdentityResolver(identities((role, "U0DANA")), Directory())

    # when
    requester = resolver.resolve(
        call_by(f"arn:aws:sts::{ACCOUNT}:assumed-role/data-loader/i-0abc", issuer=role), "event"
    )

    # then
    assert (requester.slack_user_id, requester.mapped_by) == ("U0DANA", "mapping")


def test_the_issuer_is_not_tried_for_a_principal_that_is_not_an_assumed_role() -> None:
    # given: a federated user's issuer is an IAM user; only assumed roles are mapped by their issuer
    user = f"arn:aws:iam::{ACCOUNT}:user/bob"
    resolver = IdentityResolver(identities((user, "U0BOB")), Directory())

    # when
    requester = resolver.resolve(
        call_by(f"arn:aws:sts::{ACCOUNT}:federated-user/bob", "FederatedUser", issuer=user), "event"
    )

    # then
    assert requester.slack_user_id is None


def test_an_email_nobody_in_slack_has_leaves_the_requester_unmapped() -> None:
    directory = Directory()
    requester = IdentityResolver(identities(), directory).resolve(call_by(ALICE_SESSION), "event")
    assert (requester.slack_user_id, requester.mapped_by) == (None, None)
    assert directory.asked == ["alice@example.com"]


def test_with_the_email_lookup_off_slack_is_never_asked() -> None:
    directory = Directory({"alice@example.com": "U0ALICE"})
    requester = IdentityResolver(identities(email_lookup=False), directory).resolve(call_by(ALICE_SESSION), "event")
    assert requester.slack_user_id is None
    assert directory.asked == []


@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_DataEngineer_3f9a1c2b4d5e6f70/alice",  # not an email
        f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-role/alice@example.com",  # not an Identity Center role
        f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_DataEngineer/alice@example.com",  # no hash
        f"arn:aws:iam::{ACCOUNT}:user/alice@example.com",  # an IAM user named like an email
        "service:batchoperations.s3.amazonaws.com",
    ],
)
def test_only_identity_center_sessions_named_by_email_are_looked_up(principal: str) -> None:
    directory = Directory({"alice@example.com": "U0ALICE"})
    requester = IdentityResolver(identities(), directory).resolve(call_by(principal), "event")
    assert requester.slack_user_id is None
    assert directory.asked == []


@pytest.mark.parametrize(
    ("principal", "email"),
    [
        (ALICE_SESSION, "alice@example.com"),
        (
            f"arn:aws-us-gov:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/g.h+ops@corp.example",
            "g.h+ops@corp.example",
        ),
        (f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_My_Set_0123456789abcdef/a@b.cn", "a@b.cn"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/a@b", None),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/a@b.com/x", None),
    ],
)
def test_the_email_of_an_identity_center_session(principal: str, email: str | None) -> None:
    assert sso_email(principal) == email


def test_slack_failing_keeps_the_requester_unmapped_and_says_why() -> None:
    # given
    resolver = IdentityResolver(identities(), Directory(down=True))

    # when
    resolution = resolver.resolution(call_by(ALICE_SESSION), "history")

    # then: the principal is kept; the caller learns the lookup failed and may try again
    assert resolution.requester == Requester(
        principal_arn=ALICE_SESSION, principal_type="AssumedRole", found_in="history"
    )
    assert resolution.lookup_failed is not None
    assert "ratelimited" in resolution.lookup_failed
    assert resolver.resolve(call_by(ALICE_SESSION), "history").slack_user_id is None


def test_a_mapping_needs_no_slack_so_slack_failing_does_not_matter() -> None:
    resolution = IdentityResolver(identities((ALICE_SESSION, "U0ALICE")), Directory(down=True)).resolution(
        call_by(ALICE_SESSION), "event"
    )
    assert (resolution.requester.slack_user_id, resolution.lookup_failed) == ("U0ALICE", None)


# -- never maps a principal that no entry and no email names ---------------------------------------

NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.@+=,", min_size=1, max_size=20)
PRINCIPALS = st.one_of(
    st.builds(lambda n: f"arn:aws:iam::{ACCOUNT}:user/{n}", NAME),
    st.builds(lambda r, n: f"arn:aws:sts::{ACCOUNT}:assumed-role/{r}/{n}", NAME, NAME),
    st.builds(lambda n: f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Set_0123456789abcdef/{n}", NAME),
    st.builds(lambda n: f"service:{n}", NAME),
)


@settings(max_examples=300, deadline=None)
@given(
    principal=PRINCIPALS,
    issuer=st.none() | st.builds(lambda n: f"arn:aws:iam::{ACCOUNT}:role/{n}", NAME),
    entries=st.lists(st.tuples(PRINCIPALS.filter(lambda p: p.startswith("arn:")), st.just("U0MAPPED")), max_size=4),
    known=st.dictionaries(st.builds(lambda n: f"{n}@example.com", NAME), st.just("U0EMAIL"), max_size=3),
)
def test_never_maps_a_principal_that_no_entry_and_no_email_names(
    principal: str, issuer: str | None, entries: list[tuple[str, str]], known: dict[str, str]
) -> None:
    # given: mappings written without globs (literal ARNs), and Slack users with some emails
    literal = [(p, u) for p, u in entries if not any(ch in p for ch in "*?[")]
    directory = Directory(known)
    resolver = IdentityResolver(identities(*dict(literal).items()), directory)

    # when
    requester = resolver.resolve(call_by(principal, issuer=issuer), "event")

    # then: mapped only by an entry that names the principal or its role, or by the session's own email
    named = {p for p, _ in literal}
    email = sso_email(principal)
    if principal in named or (issuer is not None and issuer in named):
        assert requester.mapped_by == "mapping"
    elif email is not None and email in known:
        assert (requester.mapped_by, requester.slack_user_id) == ("email", "U0EMAIL")
    else:
        assert (requester.slack_user_id, requester.mapped_by) == (None, None)
    assert requester.principal_arn == principal
    assert set(directory.asked) <= ({email} if email else set())


@pytest.mark.parametrize(
    "issuer",
    [
        None,  # the record names no role behind the session
        f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_DataEngineer_3f9a1c2b4d5e6f70",  # a look-alike, not reserved
        f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Other_0123456789abcdef",
        "arn:aws:iam::999999999999:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_DataEngineer_3f9a1c2b4d5e6f70",
    ],
    ids=["no issuer", "look-alike role", "another role", "another account"],
)
def test_a_session_named_like_identity_centers_is_not_looked_up_unless_its_role_is_identity_centers(
    issuer: str | None,
) -> None:
    asked: list[str] = []
    resolver = IdentityResolver(identities(), lambda email: asked.append(email) or "U0ALICE001")
    requester = resolver.resolve(call_by(ALICE_SESSION, issuer=issuer), "event")
    assert requester.slack_user_id is None
    assert asked == []
