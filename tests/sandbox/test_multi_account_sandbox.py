"""The sandbox's hub and spoke: the emulator's account and permission checks, the buses and their forward rules."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra import constants as c
from sandbox.local import (
    ACCOUNT_ID,
    FORWARD_RULE,
    HUB,
    PIPELINE,
    REGION,
    SPOKE,
    SPOKE_ACCOUNT_ID,
    SPOKE_REGION,
    LocalDeployment,
    requests_posted,
)
from sandbox.router import NotAuthorizedForSource, PutEventsDenied, make_event
from sandbox.s3batch import example_create_job_params

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture(scope="module")
def deployment() -> Iterator[LocalDeployment]:
    with LocalDeployment() as running:
        yield running


@pytest.fixture
def d(deployment: LocalDeployment) -> Iterator[LocalDeployment]:
    yield deployment
    deployment.sts.clear_faults()
    deployment.restore_spoke_role()
    for bus in deployment.default_buses.values():
        if FORWARD_RULE in bus.rules:
            bus.enable_rule(FORWARD_RULE)
    deployment.settle()


def refusal(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]


def s3control(d: LocalDeployment, session: Any, region: str = SPOKE_REGION) -> Any:
    return session.client(
        "s3control",
        region_name=region,
        endpoint_url="http://s3-control.test",
        config=Config(proxies={"http": d.proxy.url}, retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_the_sandbox_tells_the_functions_about_the_spoke(d: LocalDeployment) -> None:
    # then
    assert os.environ[c.ENV_HUB_ACCOUNT_ID] == ACCOUNT_ID
    members = json.loads(os.environ[c.ENV_MEMBER_ACCOUNTS])
    assert {"id": SPOKE_ACCOUNT_ID, "name": "analytics", "regions": [SPOKE_REGION]} in members
    assert os.environ["AWS_ENDPOINT_URL_STS"] == d.sts.url


def test_a_spoke_job_s_events_reach_the_hub_only_through_the_spoke_s_forward_rule(d: LocalDeployment) -> None:
    # when
    job_id = d.create_job(account=SPOKE)
    d.advance_until(job_id, "Suspended")
    # then
    spoke_bus = d.default_bus(SPOKE_ACCOUNT_ID, SPOKE_REGION)
    forwarded = [e for e in spoke_bus.deliveries_to(FORWARD_RULE) if job_id in str(e["detail"])]
    assert {e["detail"].get("eventName") for e in forwarded} == {"CreateJob", "JobCreated", "JobStatusChanged"}
    on_hub = [e for e in d.hub_bus.deliveries_to("job-events") if job_id in str(e["detail"])]
    assert {(e["account"], e["region"]) for e in on_hub} == {(SPOKE_ACCOUNT_ID, SPOKE_REGION)}
    assert not [e for e in d.default_bus(ACCOUNT_ID, REGION).events if job_id in str(e["detail"])]
    assert requests_posted(d.slack)[job_id] == 1


def test_a_disabled_forward_rule_means_nothing_arrives(d: LocalDeployment) -> None:
    # given
    d.default_bus(SPOKE_ACCOUNT_ID, SPOKE_REGION).disable_rule(FORWARD_RULE)
    # when
    job_id = d.create_job(account=SPOKE)
    d.advance_until(job_id, "Suspended")
    # then
    assert not [e for e in d.hub_bus.events if job_id in str(e["detail"])]
    assert requests_posted(d.slack)[job_id] == 0


def test_an_outsider_s_put_events_is_refused_and_never_reaches_the_notifier(d: LocalDeployment) -> None:
    # given an event that names a real spoke job, sent from an account the hub does not serve
    d.default_bus(SPOKE_ACCOUNT_ID, SPOKE_REGION).disable_rule(FORWARD_RULE)
    job_id = d.create_job(account=SPOKE)
    d.advance_until(job_id, "Suspended")
    forged = make_event(
        "aws.s3",
        "AWS Service Event via CloudTrail",
        {"eventSource": "s3.amazonaws.com", "eventName": "JobStatusChanged", "serviceEventDetails": {"jobId": job_id}},
        account=SPOKE_ACCOUNT_ID,
        region=SPOKE_REGION,
    )
    # when
    with pytest.raises(PutEventsDenied):
        d.put_on_hub_bus(forged, sender_account="999999999999")
    d.settle()
    # then
    assert d.hub_bus.refused[-1][0] == "999999999999"
    assert requests_posted(d.slack)[job_id] == 0


def forged_status_change(job_id: str, *, account: str = SPOKE_ACCOUNT_ID) -> dict[str, Any]:
    """S3's JobStatusChanged for a spoke job, as someone other than S3 might write it."""
    return make_event(
        "aws.s3",
        "AWS Service Event via CloudTrail",
        {
            "eventSource": "s3.amazonaws.com",
            "eventName": "JobStatusChanged",
            "serviceEventDetails": {
                "jobId": job_id,
                "jobArn": f"arn:aws:s3:{SPOKE_REGION}:{account}:job/{job_id}",
                "status": "Suspended",
            },
        },
        account=account,
        region=SPOKE_REGION,
    )


def test_a_member_s_put_events_is_admitted_under_its_own_account_whatever_it_wrote(d: LocalDeployment) -> None:
    # given an event of the member's own source that claims another account and region
    event = make_event("com.example.pipeline", "Nightly run", {"run": 7}, account="999999999999", region="eu-west-1")
    # when
    matched = d.put_on_hub_bus(event, sender_account=SPOKE_ACCOUNT_ID)
    # then (no rule matches, but the bus took it, stamped as EventBridge stamps it)
    assert matched == []
    arrived = d.hub_bus.events[-1]
    assert (arrived["source"], arrived["detail"]) == ("com.example.pipeline", {"run": 7})
    assert (arrived["account"], arrived["region"]) == (SPOKE_ACCOUNT_ID, REGION)
    assert arrived["id"] != event["id"]


@pytest.mark.parametrize("sender", [SPOKE_ACCOUNT_ID, ACCOUNT_ID])
def test_an_admitted_account_s_put_events_cannot_claim_to_be_s3(d: LocalDeployment, sender: str) -> None:
    # given a real spoke job whose events the spoke's forward rule does not carry
    d.default_bus(SPOKE_ACCOUNT_ID, SPOKE_REGION).disable_rule(FORWARD_RULE)
    job_id = d.create_job(account=SPOKE)
    d.advance_until(job_id, "Suspended")
    events_before = len(d.hub_bus.events)
    # when a member (or the hub itself) calls PutEvents with S3's event
    with pytest.raises(NotAuthorizedForSource) as raised:
        d.put_on_hub_bus(forged_status_change(job_id), sender_account=sender)
    d.settle()
    # then the entry fails as EventBridge fails it, and no rule sees it
    assert raised.value.error_code == "NotAuthorizedForSourceException"
    assert d.hub_bus.refused[-1][0] == sender
    assert len(d.hub_bus.events) == events_before
    assert requests_posted(d.slack)[job_id] == 0


def test_a_put_events_source_only_starting_like_aws_is_its_own(d: LocalDeployment) -> None:
    # given
    event = make_event("awsome.pipeline", "Nightly run", {}, account=SPOKE_ACCOUNT_ID)
    # then ("aws." is AWS's prefix; "awsome." is not)
    assert d.put_on_hub_bus(event, sender_account=SPOKE_ACCOUNT_ID) == []
    assert d.hub_bus.events[-1]["source"] == "awsome.pipeline"


def test_the_forward_rule_keeps_s3_s_source_and_the_spoke_s_account(d: LocalDeployment) -> None:
    # given S3's event on the spoke's default bus, where S3 puts it
    job_id = d.create_job(account=SPOKE)
    d.advance_until(job_id, "Suspended")
    # when the forward rule carries another status change of it (S3's own event, not a PutEvents call)
    d.default_bus(SPOKE_ACCOUNT_ID, SPOKE_REGION).put_events(forged_status_change(job_id))
    d.settle()
    # then it reaches the hub's rules as S3 wrote it
    arrived = d.hub_bus.deliveries_to("job-events")[-1]
    assert (arrived["source"], arrived["account"], arrived["region"]) == ("aws.s3", SPOKE_ACCOUNT_ID, SPOKE_REGION)


def test_a_principal_of_one_account_is_refused_every_call_on_another_s_jobs(d: LocalDeployment) -> None:
    # given
    hub_job = d.create_job(account=HUB)
    spoke_job = d.create_job(account=SPOKE)
    hub_person = d.s3control(PIPELINE, account=SPOKE)  # the hub's pipeline, signing for the spoke's region
    spoke_person = d.s3control("arn:aws:sts::210987654321:assumed-role/batch-pipeline/nightly-run", account=HUB)
    # then
    assert refusal(lambda: hub_person.describe_job(AccountId=SPOKE_ACCOUNT_ID, JobId=spoke_job)) == (
        "AccessDenied",
        403,
    )
    assert refusal(lambda: hub_person.list_jobs(AccountId=SPOKE_ACCOUNT_ID)) == ("AccessDenied", 403)
    assert refusal(
        lambda: hub_person.update_job_status(
            AccountId=SPOKE_ACCOUNT_ID, JobId=spoke_job, RequestedJobStatus="Cancelled"
        )
    ) == ("AccessDenied", 403)
    assert refusal(lambda: spoke_person.get_job_tagging(AccountId=ACCOUNT_ID, JobId=hub_job)) == ("AccessDenied", 403)
    assert refusal(lambda: d.s3control().describe_job(AccountId=SPOKE_ACCOUNT_ID, JobId=spoke_job)) == (
        "AccessDenied",
        403,
    )  # the sandbox's own key is the hub's


def test_a_job_of_another_region_is_not_found_in_this_one(d: LocalDeployment) -> None:
    # given
    job_id = d.create_job(account=SPOKE)
    spoke_person = d.s3control("arn:aws:sts::210987654321:assumed-role/batch-pipeline/nightly-run", account=SPOKE)
    # when
    in_home_region = spoke_person.describe_job(AccountId=SPOKE_ACCOUNT_ID, JobId=job_id)["Job"]
    elsewhere = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=spoke_person._request_signer._credentials.access_key,
        aws_secret_access_key="x",
    )
    # then
    assert in_home_region["JobArn"] == f"arn:aws:s3:{SPOKE_REGION}:{SPOKE_ACCOUNT_ID}:job/{job_id}"
    assert refusal(lambda: s3control(d, elsewhere, REGION).describe_job(AccountId=SPOKE_ACCOUNT_ID, JobId=job_id)) == (
        "NotFoundException",
        404,
    )


def test_the_spoke_role_does_what_its_permissions_list_and_nothing_else(d: LocalDeployment) -> None:
    # given
    job_id = d.create_job(account=SPOKE)
    d.advance_until(job_id, "Suspended")
    role = s3control(d, d.spoke_session())
    # then
    assert role.describe_job(AccountId=SPOKE_ACCOUNT_ID, JobId=job_id)["Job"]["Status"] == "Suspended"
    assert role.get_job_tagging(AccountId=SPOKE_ACCOUNT_ID, JobId=job_id)["Tags"] == []
    assert any(job["JobId"] == job_id for job in role.list_jobs(AccountId=SPOKE_ACCOUNT_ID)["Jobs"])
    assert refusal(
        lambda: role.put_job_tagging(AccountId=SPOKE_ACCOUNT_ID, JobId=job_id, Tags=[{"Key": "k", "Value": "v"}])
    ) == ("AccessDenied", 403)
    params = example_create_job_params(RoleArn=f"arn:aws:iam::{SPOKE_ACCOUNT_ID}:role/batch-operations")
    assert refusal(lambda: role.create_job(AccountId=SPOKE_ACCOUNT_ID, **params)) == ("AccessDenied", 403)
    assert refusal(lambda: role.describe_job(AccountId=ACCOUNT_ID, JobId=job_id)) == ("AccessDenied", 403)


def test_the_spoke_role_acting_in_another_region_is_refused(d: LocalDeployment) -> None:
    # given
    job_id = d.create_job(account=SPOKE)
    role = s3control(d, d.spoke_session(region=REGION), REGION)
    # then: its permissions name us-west-2's jobs only
    assert refusal(lambda: role.describe_job(AccountId=SPOKE_ACCOUNT_ID, JobId=job_id)) == ("AccessDenied", 403)
    assert refusal(
        lambda: role.update_job_status(AccountId=SPOKE_ACCOUNT_ID, JobId=job_id, RequestedJobStatus="Ready")
    ) == ("AccessDenied", 403)


def test_a_deleted_spoke_role_cannot_be_assumed_and_its_sessions_may_do_nothing(d: LocalDeployment) -> None:
    # given
    job_id = d.create_job(account=SPOKE)
    role = s3control(d, d.spoke_session("before-the-delete"))
    # when
    d.delete_spoke_role()
    # then
    assert refusal(lambda: d.spoke_session("after-the-delete")) == ("AccessDenied", 403)
    assert refusal(lambda: role.describe_job(AccountId=SPOKE_ACCOUNT_ID, JobId=job_id)) == ("AccessDenied", 403)


def test_a_wrong_trust_or_throttling_refuses_the_hub(d: LocalDeployment) -> None:
    # given a trust that admits another hub
    d.set_spoke_trust(c.spoke_trust_policy("999999999999", c.hub_role_arns("999999999999", "Other", "us-east-1")))
    # then
    assert refusal(lambda: d.spoke_session()) == ("AccessDenied", 403)
    # and given the right trust but a throttled STS
    d.restore_spoke_role()
    d.sts.throttle_next(100)
    sts = boto3.session.Session(region_name=REGION).client("sts", endpoint_url=d.sts.url, config=NO_RETRIES)
    assert refusal(lambda: sts.assume_role(RoleArn=d.sts.calls[-1].role_arn, RoleSessionName="s1")) == (
        "Throttling",
        400,
    )


def test_cloudtrail_answers_the_spoke_role_with_the_spoke_s_history(d: LocalDeployment) -> None:
    # given
    job_id = d.create_job(account=SPOKE)
    cloudtrail = d.spoke_session().client("cloudtrail", endpoint_url=d.cloudtrail.url)
    # when
    events = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateJob"}])
    # then
    assert any(job_id in event["CloudTrailEvent"] for event in events["Events"])
    assert all(SPOKE_ACCOUNT_ID in event["CloudTrailEvent"] for event in events["Events"])


def test_a_job_id_in_two_accounts_is_two_jobs(d: LocalDeployment) -> None:
    # given
    shared = "job-held-twice-00001"
    # when
    in_hub = d.create_job(account=HUB, job_id=shared, description="Hub's")
    in_spoke = d.create_job(account=SPOKE, job_id=shared, description="Spoke's")
    # then
    assert in_hub == in_spoke == shared
    hub_view = d.s3control(PIPELINE).describe_job(AccountId=ACCOUNT_ID, JobId=shared)["Job"]
    spoke_view = s3control(d, d.spoke_session()).describe_job(AccountId=SPOKE_ACCOUNT_ID, JobId=shared)["Job"]
    assert (hub_view["Description"], spoke_view["Description"]) == ("Hub's", "Spoke's")
    assert d.jobs.job_status(shared, account_id=SPOKE_ACCOUNT_ID) == "New"
    with pytest.raises(ValueError, match="several accounts"):
        d.jobs.job_status(shared)


def test_cloudtrail_refuses_a_session_of_a_role_that_is_gone(d: LocalDeployment) -> None:
    # given
    cloudtrail = d.spoke_session("before-the-delete").client(
        "cloudtrail", endpoint_url=d.cloudtrail.url, config=NO_RETRIES
    )
    # when
    d.delete_spoke_role()
    # then
    assert refusal(lambda: cloudtrail.lookup_events()) == ("AccessDeniedException", 400)
