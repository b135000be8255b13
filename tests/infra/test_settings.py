from __future__ import annotations

from typing import Any

import pytest

from infra.constants import (
    DECIDER_TIMEOUT_SECONDS,
    DECISIONS_QUEUE_VISIBILITY_SECONDS,
    DEFAULT_DECISION_LEASE_SECONDS,
)
from infra.settings import InfraSettings, InfraSettingsError, cdk_json_context
from infra.stack import build_app

# The required settings.
VALID: dict[str, Any] = {"slackChannelId": "C0123456789", "slackTeamId": "T0123456789"}


def _settings(**context: Any) -> InfraSettings:
    return InfraSettings.from_context({**VALID, **context}.get)


def _error(**context: Any) -> str:
    values = {**VALID, **context}
    with pytest.raises(InfraSettingsError) as raised:
        InfraSettings.from_context({k: v for k, v in values.items() if v is not None}.get)
    return str(raised.value)


def test_cdk_json_holds_valid_settings_with_the_documented_defaults() -> None:
    # when
    settings = InfraSettings.from_context(cdk_json_context().get)

    # then
    assert settings.slack_channel_id == "C0000000000"
    assert settings.slack_team_ids == ("T0000000000",)
    assert settings.decision_lease_seconds == DEFAULT_DECISION_LEASE_SECONDS == 120
    assert settings.slack_secret_name == "s3-batch-approvals/slack"
    assert (settings.log_retention_days, settings.audit_log_retention_days) == (30, 400)
    assert settings.audit_log_kms_encryption is False
    assert (settings.lambda_architecture, settings.python_runtime) == ("arm64", "3.13")
    assert (settings.approver_user_ids, settings.approver_group_ids) == ((), ())
    assert settings.large_job_threshold == 1_000_000
    assert (settings.api_throttle_rate_limit, settings.api_throttle_burst_limit) == (10, 20)
    assert (settings.job_tag, settings.alarm_email) == (None, None)
    assert settings.stack_name == "S3BatchApprovals"


def test_cdk_json_runs_the_app_with_the_local_python() -> None:
    import json

    from infra.settings import CDK_JSON

    assert json.loads(CDK_JSON.read_text())["app"] == ".venv/bin/python app.py"


def test_a_missing_channel_is_named_with_how_to_set_it() -> None:
    message = _error(slackChannelId=None)
    assert message == (
        "context setting 'slackChannelId' is missing: set it in cdk.json or pass -c slackChannelId=C0123456789"
    )


def test_building_the_app_without_a_channel_stops_before_any_construct() -> None:
    context = {k: v for k, v in cdk_json_context().items() if k != "slackChannelId"}
    with pytest.raises(InfraSettingsError, match="'slackChannelId' is missing"):
        build_app(context)


def test_a_missing_team_is_named_with_how_to_set_it() -> None:
    message = _error(slackTeamId=None)
    assert message == (
        "context setting 'slackTeamId' is missing: set it in cdk.json or pass -c slackTeamId=T0123456789"
    )


def test_an_empty_team_means_missing() -> None:
    assert _error(slackTeamId="") == _error(slackTeamId=None)


def test_building_the_app_without_a_team_stops_before_any_construct() -> None:
    context = {k: v for k, v in cdk_json_context().items() if k != "slackTeamId"}
    with pytest.raises(InfraSettingsError, match="'slackTeamId' is missing"):
        build_app(context)


def test_one_or_more_workspaces_or_enterprise_orgs_may_be_served() -> None:
    assert _settings(slackTeamId="T0123ABCD").slack_team_ids == ("T0123ABCD",)
    assert _settings(slackTeamId=" T0123ABCD , E0456EFGH ").slack_team_ids == ("T0123ABCD", "E0456EFGH")
    assert _settings(slackTeamId=["E0456EFGH"]).slack_team_ids == ("E0456EFGH",)


def test_a_lease_the_queue_cannot_outlast_stops_synth_naming_both_values() -> None:
    # given the queue's visibility timeout (360 s) and the decider's timeout (60 s)
    assert (DECISIONS_QUEUE_VISIBILITY_SECONDS, DECIDER_TIMEOUT_SECONDS) == (360, 60)

    # when
    message = _error(decisionLeaseSeconds=400)

    # then
    assert message.startswith("context setting 'decisionLeaseSeconds' is invalid (400): ")
    assert "(360 s)" in message
    assert "(400 s)" in message
    assert "pass -c decisionLeaseSeconds=120" in message


def test_building_the_app_with_a_bad_lease_stops_before_any_construct() -> None:
    with pytest.raises(InfraSettingsError, match=r"'decisionLeaseSeconds' is invalid \('400'\).*360 s.*400 s"):
        build_app({**cdk_json_context(), "decisionLeaseSeconds": "400"})


@pytest.mark.parametrize(
    ("lease", "allowed"),
    [("10", False), ("60", False), ("61", True), ("120", True), ("299", True), ("300", False)],
)
def test_the_lease_must_outlast_the_decider_and_fit_inside_the_queues_visibility(lease: str, allowed: bool) -> None:
    if allowed:
        assert _settings(decisionLeaseSeconds=lease).decision_lease_seconds == int(lease)
    else:
        assert "'decisionLeaseSeconds' is invalid" in _error(decisionLeaseSeconds=lease)


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("slackChannelId", "#general", "must be a Slack channel ID"),
        ("slackTeamId", "T0123ABCD,acme", "not Slack workspace (T…) or Enterprise Grid org (E…) IDs: acme"),
        ("slackTeamId", "C0123ABCD", "not Slack workspace (T…) or Enterprise Grid org (E…) IDs: C0123ABCD"),
        ("slackTeamId", " , ", "must name at least one Slack workspace"),
        ("decisionLeaseSeconds", "5", "greater than or equal to 10"),
        ("decisionLeaseSeconds", "two minutes", "valid integer"),
        ("logRetentionDays", "45", "45 is not a CloudWatch Logs retention period; use one of 1, 3, 5, 7"),
        ("auditLogRetentionDays", 366, "366 is not a CloudWatch Logs retention period"),
        ("lambdaArchitecture", "arm", "'arm64' or 'x86_64'"),
        ("pythonRuntime", "3.9", "is not a Lambda Python runtime this CDK offers"),
        ("pythonRuntime", "3.99", "is not a Lambda Python runtime this CDK offers"),
        ("approverUserIds", "U0123ABCD,alice", "not Slack user IDs: alice"),
        ("approverGroupIds", "U0123ABCD", "not Slack user group IDs: U0123ABCD"),
        ("largeJobThreshold", "a million", "valid integer"),
        ("apiThrottleRateLimit", "0", "greater than 0"),
        ("jobTagCondition", "storage", "must look like key=value"),
        ("alarmEmail", "oncall", "must be an email address"),
        ("auditLogKmsEncryption", "maybe", "valid boolean"),
        ("stackName", "1st-stack", "must start with a letter"),
    ],
)
def test_a_malformed_setting_is_named_with_its_value_and_a_hint(key: str, value: Any, hint: str) -> None:
    message = _error(**{key: value})
    assert message.startswith(f"context setting '{key}' is invalid ({value!r}): ")
    assert hint in message
    assert f"pass -c {key}=" in message


def test_every_problem_is_reported_at_once() -> None:
    message = _error(slackChannelId=None, logRetentionDays="45")
    assert "'slackChannelId' is missing" in message
    assert "'logRetentionDays' is invalid" in message


def test_command_line_strings_become_typed_settings() -> None:
    # when
    settings = _settings(
        auditLogRetentionDays="731",
        auditLogKmsEncryption="true",
        approverUserIds=" U0123ABCD , W0456EFGH ,",
        approverGroupIds=["S0123ABCD"],
        jobTagCondition="approval-team=storage",
        largeJobThreshold="5000",
    )

    # then
    assert settings.audit_log_retention_days == 731
    assert settings.audit_log_kms_encryption is True
    assert settings.approver_user_ids == ("U0123ABCD", "W0456EFGH")
    assert settings.approver_group_ids == ("S0123ABCD",)
    assert settings.job_tag == ("approval-team", "storage")
    assert settings.large_job_threshold == 5000


def test_empty_optional_settings_mean_unset() -> None:
    settings = _settings(jobTagCondition="", alarmEmail=" ", approverUserIds="")
    assert (settings.job_tag, settings.alarm_email, settings.approver_user_ids) == (None, None, ())


def test_architecture_maps_to_lambda_and_to_pip() -> None:
    arm = _settings()
    intel = _settings(lambdaArchitecture="x86_64")
    assert (arm.architecture.name, arm.pip_platform_arch) == ("arm64", "aarch64")
    assert (intel.architecture.name, intel.pip_platform_arch) == ("x86_64", "x86_64")
    assert arm.runtime.name == "python3.13"
