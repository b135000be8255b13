"""One hub, many accounts: which credentials act where (adapters/aws.py AccountClients) and the settings that
say which accounts and regions the hub serves (approvals.config)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from approvals.adapters.aws import MAX_SESSIONS, REFRESH_BEFORE_SECONDS, AccountClients, session_name
from approvals.config import Settings, SettingsError
from approvals.domain.ports import AccountNotServed, AccountUnreachable, JobsUnavailable

HUB, HUB_REGION = "123456789012", "us-east-1"
SPOKE, SPOKE_REGION = "210987654321", "us-west-2"
NOW = 1_800_000_000.0


class Own:
    """The function's own clients, by (service, region)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, service: str, region: str, config: Any = None) -> Any:
        self.asked.append((service, region))
        return ("own", service, region)


class Sts:
    """A real botocore STS client with Stubber answers: each AssumeRole must be expected, with its parameters."""

    def __init__(self) -> None:
        self.client = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=HUB_REGION
        ).client("sts")
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.issued = 0

    def expect(self, role_arn: str, session: str, *, expires_in: float = 900, key: str | None = None) -> str:
        self.issued += 1
        key = key or f"ASIASPOKE{self.issued:011d}"
        self.stubber.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": key,
                    "SecretAccessKey": "secret-" + key,
                    "SessionToken": "token-" + key,
                    "Expiration": datetime.fromtimestamp(NOW + expires_in, UTC),
                },
                "AssumedRoleUser": {"AssumedRoleId": "AROA:" + session, "Arn": f"{role_arn}/{session}"},
            },
            {"RoleArn": role_arn, "RoleSessionName": session, "DurationSeconds": 900},
        )
        return key

    def refuse(self, code: str) -> None:
        self.stubber.add_client_error("assume_role", service_error_code=code, http_status_code=403)


def spoke_role(region: str = SPOKE_REGION, account: str = SPOKE) -> str:
    return f"arn:aws:iam::{account}:role/s3-batch-approvals-spoke-{region}"


def clients(sts: Sts, own: Own, *, hub: str | None = HUB, clock: list[float] | None = None) -> AccountClients:
    moment = clock if clock is not None else [NOW]
    return AccountClients(
        function="decider",
        hub_account_id=hub,
        hub_region=HUB_REGION,
        places=[(HUB, HUB_REGION), (SPOKE, SPOKE_REGION)],
        role_prefix="s3-batch-approvals-spoke",
        own_client=own,
        sts=lambda: sts.client,
        clock=lambda: moment[0],
    )


def access_key(client: Any) -> str:
    return str(client._request_signer._credentials.access_key)


def test_not_a_hub_acts_everywhere_with_its_own_credentials() -> None:
    # given: HUB_ACCOUNT_ID unset (one account, as before the hub)
    sts, own = Sts(), Own()
    accounts = clients(sts, own, hub=None)

    # when
    made = accounts("s3control", SPOKE, "eu-west-1", "job-1")

    # then: its own client, no AssumeRole
    assert made == ("own", "s3control", "eu-west-1")
    assert accounts.serves("999999999999", "ap-south-1")
    sts.stubber.assert_no_pending_responses()


def test_the_hubs_own_account_and_region_use_its_own_role() -> None:
    sts, own = Sts(), Own()

    made = clients(sts, own)("s3control", HUB, HUB_REGION, "job-1")

    assert made == ("own", "s3control", HUB_REGION)


def test_a_member_is_acted_in_through_its_spoke_role_with_a_session_naming_function_and_job() -> None:
    # given
    sts, own = Sts(), Own()
    key = sts.expect(spoke_role(), "decider-job-0001")

    # when
    made = clients(sts, own)("s3control", SPOKE, SPOKE_REGION, "job-0001")

    # then: a client of the member's region, signing with the spoke session's credentials
    assert made.meta.region_name == SPOKE_REGION
    assert access_key(made) == key
    sts.stubber.assert_no_pending_responses()
    assert own.asked == []


def test_a_session_is_kept_for_its_job_until_near_its_end_then_replaced() -> None:
    # given
    sts, own = Sts(), Own()
    moment = [NOW]
    accounts = clients(sts, own, clock=moment)
    first = sts.expect(spoke_role(), "decider-job-0001")
    accounts("s3control", SPOKE, SPOKE_REGION, "job-0001")

    # when: the same job again, before the session nears its end (no AssumeRole is expected: Stubber would fail)
    moment[0] = NOW + 900 - REFRESH_BEFORE_SECONDS - 1
    again = accounts("s3control", SPOKE, SPOKE_REGION, "job-0001")

    # then
    assert access_key(again) == first

    # when: near its end
    moment[0] = NOW + 900 - REFRESH_BEFORE_SECONDS + 1
    second = sts.expect(spoke_role(), "decider-job-0001")
    renewed = accounts("s3control", SPOKE, SPOKE_REGION, "job-0001")

    # then: a new session
    assert access_key(renewed) == second
    sts.stubber.assert_no_pending_responses()


def test_another_job_gets_its_own_session() -> None:
    sts, own = Sts(), Own()
    accounts = clients(sts, own)
    sts.expect(spoke_role(), "decider-job-0001")
    sts.expect(spoke_role(), "decider-job-0002")

    accounts("s3control", SPOKE, SPOKE_REGION, "job-0001")
    accounts("s3control", SPOKE, SPOKE_REGION, "job-0002")

    sts.stubber.assert_no_pending_responses()


def test_sessions_kept_are_bounded() -> None:
    sts, own = Sts(), Own()
    accounts = clients(sts, own)
    for index in range(MAX_SESSIONS + 1):
        sts.expect(spoke_role(), f"decider-job-{index:05d}")
        accounts("s3control", SPOKE, SPOKE_REGION, f"job-{index:05d}")

    # then: the oldest was forgotten, so it is assumed again
    sts.expect(spoke_role(), "decider-job-00000")
    accounts("s3control", SPOKE, SPOKE_REGION, "job-00000")
    sts.stubber.assert_no_pending_responses()
    assert len(accounts._sessions) == MAX_SESSIONS


@pytest.mark.parametrize(
    ("account", "region"),
    [("999999999999", HUB_REGION), (SPOKE, HUB_REGION), (HUB, "eu-west-1")],
    ids=["unknown account", "member in a region not listed", "hub account in another region"],
)
def test_an_account_or_region_the_hub_does_not_serve_is_never_acted_in(account: str, region: str) -> None:
    sts, own = Sts(), Own()
    accounts = clients(sts, own)

    assert not accounts.serves(account, region)
    with pytest.raises(AccountNotServed, match=f"does not serve account {account} in {region}") as raised:
        accounts("s3control", account, region, "job-1")

    assert isinstance(raised.value, JobsUnavailable)  # a decision on it fails and goes back to pending
    assert own.asked == []
    sts.stubber.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["AccessDenied", "Throttling", "RegionDisabledException"])
def test_a_role_that_cannot_be_assumed_says_where_and_which_role(code: str) -> None:
    sts, own = Sts(), Own()
    sts.refuse(code)

    with pytest.raises(AccountUnreachable) as raised:
        clients(sts, own)("s3control", SPOKE, SPOKE_REGION, "job-1")

    said = str(raised.value)
    assert f"cannot act in account {SPOKE} ({SPOKE_REGION})" in said
    assert spoke_role() in said
    assert code in said
    assert isinstance(raised.value, JobsUnavailable)


def test_the_role_arn_follows_the_regions_partition() -> None:
    accounts = clients(Sts(), Own())

    assert accounts.role_arn(SPOKE, "cn-north-1") == f"arn:aws-cn:iam::{SPOKE}:role/s3-batch-approvals-spoke-cn-north-1"
    assert accounts.role_arn(SPOKE, "us-gov-west-1").startswith("arn:aws-us-gov:iam::")


@given(function=st.text(min_size=1, max_size=40), job=st.none() | st.text(max_size=80))
def test_session_names_are_always_names_sts_accepts(function: str, job: str | None) -> None:
    name = session_name(function, job)

    assert re.fullmatch(r"[A-Za-z0-9_+=,.@-]{2,64}", name)


def test_session_name_of_a_job_and_of_the_reconciliation() -> None:
    assert session_name("notifier", "a" * 36) == "notifier-" + "a" * 36
    assert session_name("notifier", None) == "notifier-reconcile"
    assert len(session_name("decider", "x" * 80)) == 64


# -- settings ---------------------------------------------------------------------------------------

BASE = {
    "SLACK_SECRET_NAME": "s",
    "SLACK_CHANNEL_ID": "C0123",
    "REQUESTS_TABLE_NAME": "r",
    "IDEMPOTENCY_TABLE_NAME": "i",
    "AUDIT_TABLE_NAME": "a",
    "AWS_REGION": HUB_REGION,
}


def test_the_places_a_hub_serves_its_own_first_and_names() -> None:
    cfg = Settings.from_env(
        {
            **BASE,
            "HUB_ACCOUNT_ID": HUB,
            "MEMBER_ACCOUNTS": (
                f'[{{"id": "{SPOKE}", "name": "analytics", "regions": ["us-west-2", "eu-west-1"]}},'
                f' {{"id": "{HUB}", "name": "platform"}}, {{"id": "333333333333"}}]'
            ),
        }
    )

    assert cfg.places == (
        (HUB, HUB_REGION),
        (SPOKE, "us-west-2"),
        (SPOKE, "eu-west-1"),
        ("333333333333", HUB_REGION),
    )
    assert cfg.account_names == {SPOKE: "analytics", HUB: "platform"}


def test_not_a_hub_serves_no_listed_places() -> None:
    assert Settings.from_env(BASE).places == ()


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("not json", "MEMBER_ACCOUNTS: Value error, not JSON"),
        ('[{"id": 210987654321}]', "MEMBER_ACCOUNTS"),
        ('[{"id": "21098765432"}]', "12 digits"),
        ('[{"id": "210987654321", "regions": ["mars-1"]}]', "not region names: mars-1"),
        ('[{"id": "210987654321"}, {"id": "210987654321"}]', "210987654321 listed more than once"),
        ('[{"id": "210987654321", "role": "x"}]', "MEMBER_ACCOUNTS"),
        ('[{"id": "210987654321", "regions": []}]', "leave regions out for the hub's own region"),
    ],
)
def test_bad_member_accounts_are_refused_naming_the_variable(value: str, said: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(said)):
        Settings.from_env({**BASE, "HUB_ACCOUNT_ID": HUB, "MEMBER_ACCOUNTS": value})


def test_a_bad_hub_account_or_role_prefix_is_refused() -> None:
    with pytest.raises(SettingsError, match="HUB_ACCOUNT_ID"):
        Settings.from_env({**BASE, "HUB_ACCOUNT_ID": "12345"})
    with pytest.raises(SettingsError, match="SPOKE_ROLE_PREFIX"):
        Settings.from_env({**BASE, "SPOKE_ROLE_PREFIX": "has space"})
    with pytest.raises(SettingsError, match="SPOKE_ROLE_PREFIX"):
        Settings.from_env({**BASE, "SPOKE_ROLE_PREFIX": "x" * 60})
    with pytest.raises(SettingsError, match="SPOKE_ROLE_PREFIX"):
        Settings.from_env({**BASE, "SPOKE_ROLE_PREFIX": "spökè"})  # IAM names are ASCII


def test_a_hub_needs_its_region() -> None:
    without = {k: v for k, v in BASE.items() if k != "AWS_REGION"}

    with pytest.raises(SettingsError, match="AWS_REGION: required with HUB_ACCOUNT_ID"):
        Settings.from_env({**without, "HUB_ACCOUNT_ID": HUB})
    assert Settings.from_env(without).places == ()  # not a hub: one account, as before
