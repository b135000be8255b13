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
SPOKE = "210987654321"
ORG = "o-sandbox0001"
HUB_ROLES = c.hub_role_arns(HUB, "S3BatchApprovals", "us-east-1")
ROLE_NAME = c.spoke_role_name(c.DEFAULT_SPOKE_ROLE_PREFIX, "us-west-2")
ROLE_ARN = f"arn:aws:iam::{SPOKE}:role/{ROLE_NAME}"
CALLERS = {
    "NOTIFIERKEY": f"arn:aws:sts::{HUB}:assumed-role/S3BatchApprovals-notifier-us-east-1/notifier",
    "DECIDERKEY": f"arn:aws:sts::{HUB}:assumed-role/S3BatchApprovals-decider-us-east-1/decider",
    "OTHERROLEKEY": f"arn:aws:sts::{HUB}:assumed-role/some-admin/someone",
    "OUTSIDERKEY": "arn:aws:sts::999999999999:assumed-role/S3BatchApprovals-notifier-us-east-1/notifier",
}
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


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


def sts(front: StsFront, key: str) -> Any:
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key="x", region_name="us-east-1").client(
        "sts", endpoint_url=front.url, config=NO_RETRIES
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
