"""The STS front (sandbox.sts) and the policy evaluator under it (sandbox.iam): as strict as STS and IAM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra import constants as c
from sandbox.aws_local import WsgiServer, moto_server
from sandbox.iam import Principal, allows, principal_arn_of, trust_admits
from sandbox.sts import StsFront, moto_client

HUB = "123456789012"
SPOKE = "444455556666"  # not the sandbox deployment's spoke: moto's state is per process, not per server
ORG = "o-sandbox0001"
HUB_ROLES = c.hub_role_arns(HUB, "S3BatchApprovals", "us-east-1")
ROLE_NAME = c.spoke_role_name(c.DEFAULT_SPOKE_ROLE_PREFIX, "us-west-2")
ROLE_ARN = f"arn:aws:iam::{SPOKE}:role/{ROLE_NAME}"
CALLERS = {
    "NOTIFIERKEY": f"arn:aws:sts::{HUB}:assumed-role/S3BatchApprovals-notifier-us-east-1/notifier",
    "DECIDERKEY": f"arn:aws:sts::{HUB}:assumed-role/S3BatchApprovals-decider-us-east-1/decider",
    "OTHERROLEKEY": f"arn:aws:sts::{HUB}:assumed-role/some-admin/someone",
    "OUTSIDERKEY": "arn:aws:sts::999999999999:assumed-role/S3BatchApprovals-notifier-us-east-1/notifier",
    "USERKEY": f"arn:aws:iam::{HUB}:user/alice",  # long-term keys: no role chaining
}
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
UNVALIDATED = Config(retries={"mode": "standard", "total_max_attempts": 1}, parameter_validation=False)
LONG_ROLE = "two-hour-role"
LONG_ROLE_ARN = f"arn:aws:iam::{SPOKE}:role/{LONG_ROLE}"


@pytest.fixture(scope="module")
def moto() -> Iterator[WsgiServer]:
    server = moto_server().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def front(moto: WsgiServer) -> Iterator[StsFront]:
    with StsFront(moto.url, known_callers=CALLERS, organizations={HUB: ORG, SPOKE: ORG}) as running:
        yield running


@pytest.fixture
def spoke_role(moto: WsgiServer, front: StsFront) -> Iterator[Any]:
    """The spoke role as the spoke stack makes it, in the spoke account; removed after the test."""
    iam = moto_client(moto.url, "iam", account_id=SPOKE)
    iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(c.spoke_trust_policy(HUB, HUB_ROLES, ORG)))
    yield iam
    front.clear_faults()
    iam.delete_role(RoleName=ROLE_NAME)


@pytest.fixture
def long_role(moto: WsgiServer) -> Iterator[str]:
    """A role of the spoke account with a two-hour MaxSessionDuration that trusts the whole hub account."""
    iam = moto_client(moto.url, "iam", account_id=SPOKE)
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": HUB}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=LONG_ROLE, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=7200)
    yield LONG_ROLE_ARN
    iam.delete_role(RoleName=LONG_ROLE)


def sts(front: StsFront, key: str, config: Config = NO_RETRIES) -> Any:
    """An STS client of ``front`` signing with ``key`` (``UNVALIDATED``: botocore sends what STS must judge)."""
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key="x", region_name="us-east-1").client(
        "sts", endpoint_url=front.url, config=config
    )


def refusal(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("key", ["NOTIFIERKEY", "DECIDERKEY"])
def test_the_hub_functions_roles_may_assume_the_spoke_role(front: StsFront, spoke_role: Any, key: str) -> None:
    # when
    answer = sts(front, key).assume_role(RoleArn=ROLE_ARN, RoleSessionName="decider-job-1")
    # then
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{SPOKE}:assumed-role/{ROLE_NAME}/decider-job-1"
    session = boto3.session.Session(
        aws_access_key_id=answer["Credentials"]["AccessKeyId"],
        aws_secret_access_key=answer["Credentials"]["SecretAccessKey"],
        aws_session_token=answer["Credentials"]["SessionToken"],
        region_name="us-west-2",
    )
    identity = session.client("sts", endpoint_url=front.url).get_caller_identity()  # forwarded to moto
    assert identity["Account"] == SPOKE


def test_another_role_of_the_hub_account_is_refused(front: StsFront, spoke_role: Any) -> None:
    # when
    code, status = refusal(lambda: sts(front, "OTHERROLEKEY").assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1"))
    # then
    assert (code, status) == ("AccessDenied", 403)
    assert front.refused()[-1].caller == CALLERS["OTHERROLEKEY"]


def test_a_role_of_the_same_name_in_another_account_is_refused(front: StsFront, spoke_role: Any) -> None:
    assert refusal(lambda: sts(front, "OUTSIDERKEY").assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1")) == (
        "AccessDenied",
        403,
    )


def test_a_missing_role_is_refused_as_sts_refuses_it(front: StsFront, moto: WsgiServer) -> None:
    # given no role in the spoke account (moto alone would hand out credentials for it all the same)
    plain = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    assert plain.client("sts", endpoint_url=moto.url).assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1")
    # when, then
    assert refusal(lambda: sts(front, "NOTIFIERKEY").assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1")) == (
        "AccessDenied",
        403,
    )


def test_a_trust_that_names_another_organisation_refuses_the_hub(front: StsFront, spoke_role: Any) -> None:
    # given
    spoke_role.update_assume_role_policy(
        RoleName=ROLE_NAME, PolicyDocument=json.dumps(c.spoke_trust_policy(HUB, HUB_ROLES, "o-elsewhere01"))
    )
    # when, then
    assert refusal(lambda: sts(front, "NOTIFIERKEY").assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1")) == (
        "AccessDenied",
        403,
    )


def test_throttling_answers_throttling_until_it_passes(front: StsFront, spoke_role: Any) -> None:
    # given
    front.throttle_next(1)
    client = sts(front, "NOTIFIERKEY")
    # when
    first = refusal(lambda: client.assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1"))
    second = client.assume_role(RoleArn=ROLE_ARN, RoleSessionName="s1")
    # then
    assert first == ("Throttling", 400)
    assert second["Credentials"]["AccessKeyId"]


def test_a_session_name_sts_would_refuse_is_a_validation_error(front: StsFront, spoke_role: Any) -> None:
    assert refusal(lambda: sts(front, "NOTIFIERKEY").assume_role(RoleArn=ROLE_ARN, RoleSessionName="x" * 65)) == (
        "ValidationError",
        400,
    )


@pytest.mark.parametrize("name", ["décideur-job-1", "job-\u0661\u0662", "ジョブ", "x y", "a"])
def test_a_session_name_outside_sts_s_ascii_pattern_is_a_validation_error(
    front: StsFront, spoke_role: Any, name: str
) -> None:
    # when
    code, status = refusal(
        lambda: sts(front, "NOTIFIERKEY", UNVALIDATED).assume_role(RoleArn=ROLE_ARN, RoleSessionName=name)
    )
    # then
    assert (code, status) == ("ValidationError", 400)
    assert front.refused()[-1].session_name == name


@pytest.mark.parametrize(("key", "seconds"), [("NOTIFIERKEY", 900), ("NOTIFIERKEY", 3600), ("USERKEY", 7200)])
def test_a_duration_within_the_role_s_limits_is_granted(
    front: StsFront, long_role: str, key: str, seconds: int
) -> None:
    # when
    answer = sts(front, key).assume_role(RoleArn=long_role, RoleSessionName="s1", DurationSeconds=seconds)
    # then
    assert answer["Credentials"]["AccessKeyId"]


@pytest.mark.parametrize(
    ("key", "role", "seconds", "message"),
    [
        ("NOTIFIERKEY", ROLE_ARN, 3601, "exceeds the 1 hour session limit for roles assumed by role chaining"),
        ("NOTIFIERKEY", LONG_ROLE_ARN, 7200, "exceeds the 1 hour session limit for roles assumed by role chaining"),
        ("USERKEY", LONG_ROLE_ARN, 7201, "exceeds the MaxSessionDuration set for this role"),
        ("NOTIFIERKEY", ROLE_ARN, 899, "Member must have value greater than or equal to 900"),
        ("NOTIFIERKEY", ROLE_ARN, 43201, "Member must have value less than or equal to 43200"),
        ("NOTIFIERKEY", ROLE_ARN, 0, "Member must have value greater than or equal to 900"),
    ],
)
def test_a_duration_sts_would_refuse_is_a_validation_error(
    front: StsFront, spoke_role: Any, long_role: str, key: str, role: str, seconds: int, message: str
) -> None:
    # when
    with pytest.raises(ClientError) as raised:
        sts(front, key, UNVALIDATED).assume_role(RoleArn=role, RoleSessionName="s1", DurationSeconds=seconds)
    # then
    error = raised.value.response["Error"]
    assert (error["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("ValidationError", 400)
    assert message in error["Message"]


def test_a_user_asking_beyond_a_default_role_s_hour_is_refused(front: StsFront, moto: WsgiServer) -> None:
    # given a role created with no MaxSessionDuration (IAM's default: one hour)
    iam = moto_client(moto.url, "iam", account_id=SPOKE)
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": HUB}, "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName="default-hour", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    try:
        # then
        assert sts(front, "USERKEY").assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=3600)
        assert refusal(
            lambda: sts(front, "USERKEY").assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=3601)
        ) == ("ValidationError", 400)
    finally:
        iam.delete_role(RoleName="default-hour")


# -- the evaluator, as a table ----------------------------------------------------------------------

NOTIFIER = Principal(CALLERS["NOTIFIERKEY"], HUB, ORG)


@pytest.mark.parametrize(
    ("trust", "admitted"),
    [
        (c.spoke_trust_policy(HUB, HUB_ROLES), True),
        (c.spoke_trust_policy(HUB, HUB_ROLES, ORG), True),
        (c.spoke_trust_policy(HUB, HUB_ROLES, "o-elsewhere01"), False),
        (c.spoke_trust_policy(HUB, HUB_ROLES[1:]), False),  # the decider's role only
        (c.spoke_trust_policy("999999999999", HUB_ROLES), False),
        ({"Statement": [{"Effect": "Allow", "Principal": {"AWS": HUB_ROLES[0]}, "Action": "sts:AssumeRole"}]}, True),
        ({"Statement": [{"Effect": "Allow", "Principal": {"AWS": HUB}, "Action": "sts:*"}]}, True),
        (
            {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:*"}]},
            False,
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{HUB}:role/S3BatchApprovals-*"}},
                    }
                ]
            },
            True,
        ),
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
                    {"Effect": "Deny", "Principal": {"AWS": HUB}, "Action": "sts:AssumeRole"},
                ]
            },
            False,
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "sts:AssumeRole",
                        "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
                    }
                ]
            },
            False,  # a condition the evaluator does not model refuses
        ),
    ],
)
def test_trust_policies_admit_exactly_whom_iam_would(trust: dict[str, Any], admitted: bool) -> None:
    assert trust_admits(trust, NOTIFIER) is admitted


ALL_OF_THE_HUB = {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}


def _condition_id(value: Any) -> str | None:
    """A test id for a condition: ``Operator:key=value``."""
    if not isinstance(value, dict):
        return None
    ((operator, tests),) = value.items()
    return ",".join(f"{operator}:{key}={expected}" for key, expected in tests.items())


def _trust_with(condition: dict[str, Any], effect: str = "Allow") -> dict[str, Any]:
    statement = {"Effect": effect, "Principal": "*", "Action": "sts:AssumeRole", "Condition": condition}
    return {"Statement": [statement] if effect == "Allow" else [ALL_OF_THE_HUB, statement]}


@pytest.mark.parametrize(
    ("condition", "admitted"),
    [
        ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{HUB}:role/S3BatchApprovals-*"}}, True),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/S3BatchApprovals-*"}}, True),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::?????????????:role/*"}}, False),  # 13 characters
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*"}}, False),  # five components: * spans no colon
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:*:role/S3BatchApprovals-*"}}, False),
        ({"ArnLike": {"aws:PrincipalArn": "arn:*:S3BatchApprovals-notifier-us-east-1"}}, False),
        ({"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{HUB}:role/S3BatchApprovals-*"}}, True),  # as ArnLike
        ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*"}}, True),  # matches nothing, so "not" holds
        ({"Null": {"aws:PrincipalOrgID": "false"}}, True),
        ({"Null": {"aws:PrincipalOrgID": "true"}}, False),
        ({"Null": {"aws:SourceIdentity": "true"}}, True),
        ({"Null": {"aws:SourceIdentity": "false"}}, False),
        ({"NullIfExists": {"aws:SourceIdentity": "true"}}, False),  # no such operator
        ({"ForAnyValue:StringEquals": {"aws:PrincipalOrgID": ORG}}, False),  # not modelled: refuses
    ],
    ids=_condition_id,
)
def test_an_allow_s_condition_admits_exactly_whom_iam_would(condition: dict[str, Any], admitted: bool) -> None:
    assert trust_admits(_trust_with(condition), NOTIFIER) is admitted


@pytest.mark.parametrize(
    ("condition", "admitted"),
    [
        ({"Null": {"aws:SourceIdentity": "true"}}, False),  # the key is absent: Null true holds, so Deny
        ({"Null": {"aws:SourceIdentity": "false"}}, True),
        ({"Null": {"aws:PrincipalOrgID": "true"}}, True),
        ({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, False),  # unknown operator, absent key: Deny
        ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, False),
        ({"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{HUB}:role/S3BatchApprovals-*"}}, True),
        ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}, True),
        ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*"}}, False),  # nothing matches it: Deny
        ({"StringNotEquals": {"aws:SourceIdentity": "x"}}, False),  # negated on an absent key holds: Deny
    ],
    ids=_condition_id,
)
def test_a_deny_s_condition_refuses_whom_iam_would(condition: dict[str, Any], admitted: bool) -> None:
    assert trust_admits(_trust_with(condition, "Deny"), NOTIFIER) is admitted


def test_a_role_session_s_principal_arn_is_its_role() -> None:
    assert principal_arn_of(CALLERS["NOTIFIERKEY"]) == HUB_ROLES[0]
    assert principal_arn_of(f"arn:aws:iam::{HUB}:user/alice") == f"arn:aws:iam::{HUB}:user/alice"


@pytest.mark.parametrize(
    ("action", "resource", "context", "allowed"),
    [
        ("s3:DescribeJob", f"arn:aws:s3:us-west-2:{SPOKE}:job/abc", {}, True),
        ("s3:describejob", f"arn:aws:s3:us-west-2:{SPOKE}:job/abc", {}, True),  # actions ignore case
        ("s3:DescribeJob", f"arn:aws:s3:us-east-1:{SPOKE}:job/abc", {}, False),  # another region
        ("s3:DescribeJob", f"arn:aws:s3:us-west-2:{HUB}:job/abc", {}, False),  # another account
        ("s3:UpdateJobStatus", f"arn:aws:s3:us-west-2:{SPOKE}:job/abc", {}, False),  # needs the tag
        ("s3:UpdateJobStatus", f"arn:aws:s3:us-west-2:{SPOKE}:job/abc", {"aws:ResourceTag/approvals": "slack"}, True),
        ("s3:ListJobs", "*", {}, True),
        ("s3:CreateJob", "*", {}, False),
        ("s3:PutJobTagging", f"arn:aws:s3:us-west-2:{SPOKE}:job/abc", {}, False),
        ("cloudtrail:LookupEvents", "*", {}, True),
    ],
)
def test_the_spoke_permissions_allow_exactly_what_they_list(
    action: str, resource: str, context: dict[str, str], allowed: bool
) -> None:
    # given
    document = c.spoke_permissions(
        job_tag_condition=("approvals", "slack"), partition="aws", region="us-west-2", account=SPOKE
    )
    # then
    assert allows([document], action, resource, context) is allowed


UNTAGGED_JOBS_REFUSED = {
    "Statement": [
        {"Effect": "Allow", "Action": "s3:UpdateJobStatus", "Resource": f"arn:aws:s3:us-west-2:{SPOKE}:job/*"},
        {
            "Effect": "Deny",
            "Action": "s3:UpdateJobStatus",
            "Resource": "*",
            "Condition": {"Null": {"aws:ResourceTag/team": "true"}},
        },
    ]
}


@pytest.mark.parametrize(
    ("context", "allowed"),
    [
        ({}, False),  # an untagged job: the key is absent, so the Deny applies
        ({"aws:ResourceTag/team": "storage"}, True),
        ({"aws:resourcetag/TEAM": "storage"}, True),  # condition keys ignore case
        ({"aws:ResourceTag/owner": "storage"}, False),
    ],
)
def test_a_deny_on_a_null_tag_refuses_untagged_jobs(context: dict[str, str], allowed: bool) -> None:
    # given
    job = f"arn:aws:s3:us-west-2:{SPOKE}:job/abc"
    # then
    assert allows([UNTAGGED_JOBS_REFUSED], "s3:UpdateJobStatus", job, context) is allowed
