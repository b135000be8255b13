from __future__ import annotations

import pytest

from infra.constants import (
    AUDIT_WRITER_HANDLER,
    CALLBACK_HANDLER,
    DECIDER_HANDLER,
    ENV_APPROVER_GROUP_IDS,
    ENV_APPROVER_USER_IDS,
    ENV_AUDIT_TABLE_NAME,
    ENV_DECISION_LEASE_SECONDS,
    ENV_DECISIONS_QUEUE_URL,
    ENV_IDEMPOTENCY_TABLE_NAME,
    ENV_LARGE_JOB_THRESHOLD,
    ENV_REQUESTS_TABLE_NAME,
    ENV_SLACK_CHANNEL_ID,
    ENV_SLACK_SECRET_NAME,
    ENV_SLACK_TEAM_ID,
    METRICS_NAMESPACE,
    NOTIFIER_HANDLER,
    SERVICE_NAME,
)
from tests.infra.conftest import Synth

HANDLERS = [NOTIFIER_HANDLER, CALLBACK_HANDLER, DECIDER_HANDLER, AUDIT_WRITER_HANDLER]
COMMON_ENV = [
    ENV_SLACK_SECRET_NAME,
    ENV_SLACK_CHANNEL_ID,
    ENV_REQUESTS_TABLE_NAME,
    ENV_AUDIT_TABLE_NAME,
    ENV_IDEMPOTENCY_TABLE_NAME,
    ENV_LARGE_JOB_THRESHOLD,
]
SLACK_ENV = [ENV_DECISIONS_QUEUE_URL, ENV_APPROVER_USER_IDS, ENV_APPROVER_GROUP_IDS]


def test_there_are_exactly_the_four_functions(default_synth: Synth) -> None:
    assert sorted(p["Handler"] for p in default_synth.props("AWS::Lambda::Function")) == sorted(HANDLERS)


@pytest.mark.parametrize("handler", HANDLERS)
def test_every_function_runs_python_3_13_on_arm64_with_json_logs_and_active_tracing(
    default_synth: Synth, handler: str
) -> None:
    # given
    function = default_synth.function_props(handler)

    # then
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    assert function["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    assert "Ref" in function["LoggingConfig"]["LogGroup"]
    assert "ReservedConcurrentExecutions" not in function


@pytest.mark.parametrize("handler", HANDLERS)
def test_every_function_has_powertools_and_its_settings_in_the_environment(default_synth: Synth, handler: str) -> None:
    # given
    env = default_synth.function_props(handler)["Environment"]["Variables"]

    # then
    assert env["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAME
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert env["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    assert env[ENV_SLACK_SECRET_NAME] == "s3-batch-approvals/slack"
    assert env[ENV_SLACK_CHANNEL_ID] == "C0000000000"
    assert env[ENV_LARGE_JOB_THRESHOLD] == "1000000"
    assert env[ENV_REQUESTS_TABLE_NAME] == {"Ref": default_synth.logical_id(default_synth.stack.storage.requests_table)}
    assert env[ENV_IDEMPOTENCY_TABLE_NAME] == {
        "Ref": default_synth.logical_id(default_synth.stack.storage.idempotency_table)
    }
    # Every function's settings model requires the audit table's name; only the notifier and the decider
    # may write to it (see test_iam).
    assert env[ENV_AUDIT_TABLE_NAME] == {"Ref": default_synth.logical_id(default_synth.stack.storage.audit_table)}
    assert set(COMMON_ENV) <= set(env)


@pytest.mark.parametrize("handler", [CALLBACK_HANDLER, DECIDER_HANDLER])
def test_the_slack_functions_also_know_the_queue_and_the_approvers(default_synth: Synth, handler: str) -> None:
    # given
    env = default_synth.function_props(handler)["Environment"]["Variables"]

    # then
    assert env[ENV_DECISIONS_QUEUE_URL] == {
        "Ref": default_synth.logical_id(default_synth.stack.slack_api.decisions_queue)
    }
    assert env[ENV_APPROVER_USER_IDS] == ""
    assert env[ENV_APPROVER_GROUP_IDS] == ""
    assert env[ENV_SLACK_TEAM_ID] == "T0000000000"


def test_only_the_functions_that_read_slack_requests_know_the_team(default_synth: Synth) -> None:
    knowing = {h for h in HANDLERS if ENV_SLACK_TEAM_ID in default_synth.function_props(h)["Environment"]["Variables"]}
    assert knowing == {CALLBACK_HANDLER, DECIDER_HANDLER}


def test_the_decider_and_the_notifier_hold_decision_claims_for_the_default_lease(default_synth: Synth) -> None:
    # when
    leases = {
        handler: default_synth.function_props(handler)["Environment"]["Variables"].get(ENV_DECISION_LEASE_SECONDS)
        for handler in HANDLERS
    }

    # then
    assert leases == {
        NOTIFIER_HANDLER: "120",
        DECIDER_HANDLER: "120",
        CALLBACK_HANDLER: None,
        AUDIT_WRITER_HANDLER: None,
    }


def test_settings_reach_the_functions(custom_synth: Synth) -> None:
    # given
    decider = custom_synth.function_props(DECIDER_HANDLER)
    env = decider["Environment"]["Variables"]

    # then
    assert decider["Runtime"] == "python3.13"
    assert decider["Architectures"] == ["x86_64"]
    assert env[ENV_APPROVER_USER_IDS] == "U0123ABCD,W0456EFGH"
    assert env[ENV_APPROVER_GROUP_IDS] == "S0123ABCD"
    assert env[ENV_SLACK_CHANNEL_ID] == "C0123456789"
    assert env[ENV_LARGE_JOB_THRESHOLD] == "5000"
    assert env[ENV_SLACK_TEAM_ID] == "T0123ABCD,E0456EFGH"
    assert env[ENV_DECISION_LEASE_SECONDS] == "150"
    notifier = custom_synth.function_props(NOTIFIER_HANDLER)["Environment"]["Variables"]
    assert notifier[ENV_DECISION_LEASE_SECONDS] == "150"


def test_all_functions_share_one_code_asset(default_synth: Synth) -> None:
    # given
    codes = [p["Code"] for p in default_synth.props("AWS::Lambda::Function")]

    # then
    assert len({str(code["S3Key"]) for code in codes}) == 1


def test_each_debug_log_group_keeps_30_days_and_goes_with_the_stack(default_synth: Synth) -> None:
    # given
    stack = default_synth.stack
    functions = [stack.notifier.function, stack.slack_api.callback, stack.slack_api.decider]

    for function in functions:
        # when
        group_id = default_synth.resource(function)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group = default_synth.json["Resources"][group_id]

        # then
        assert group["Properties"]["RetentionInDays"] == 30
        assert group["DeletionPolicy"] == "Delete"


def test_log_retention_follows_the_setting(custom_synth: Synth) -> None:
    callback = custom_synth.resource(custom_synth.stack.slack_api.callback)
    group_id = callback["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert custom_synth.json["Resources"][group_id]["Properties"]["RetentionInDays"] == 90


def test_roles_write_only_their_own_log_group_and_use_no_managed_policies(default_synth: Synth) -> None:
    stack = default_synth.stack
    for function in [stack.notifier.function, stack.slack_api.callback, stack.slack_api.decider, stack.audit.writer]:
        # given
        props = default_synth.resource(function)["Properties"]
        role = default_synth.json["Resources"][props["Role"]["Fn::GetAtt"][0]]
        log_statements = [s for s in default_synth.role_statements(function) if "logs:PutLogEvents" in s["Action"]]

        # then
        assert "ManagedPolicyArns" not in role["Properties"]
        assert [s["Resource"] for s in log_statements] == [
            {"Fn::GetAtt": [props["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}
        ]


def _bytecode_warnings(synth: Synth) -> list[str]:
    from aws_cdk.assertions import Annotations, Match

    found = Annotations.from_stack(synth.stack).find_warning("*", Match.string_like_regexp("ships without bytecode"))
    return [str(entry.entry.data) for entry in found]


def test_synth_warns_when_it_has_no_interpreter_to_compile_the_runtime_s_bytecode(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # given: Python 3.14, of which this machine has no interpreter (the default, 3.13, it has)
    from infra.bundling import bytecode_interpreter
    from tests.infra.conftest import synthesize

    if bytecode_interpreter("3.14") is not None:
        pytest.skip("this machine has a Python 3.14 interpreter")

    # when
    synth = synthesize({"pythonRuntime": "3.14"}, tmp_path_factory.mktemp("cdk-no-314"))

    # then: one warning, naming the version, the cost and the fix
    [warning] = _bytecode_warnings(synth)
    assert "Python 3.14" in warning
    assert "about 3x slower" in warning
    assert "BUNDLE_PYTHON" in warning


def test_synth_does_not_warn_when_the_runtime_s_interpreter_is_here(default_synth: Synth) -> None:
    from infra.bundling import bytecode_interpreter

    if bytecode_interpreter(default_synth.stack.defaults.settings.python_runtime) is None:
        pytest.skip("no interpreter of the default runtime on this machine")
    assert _bytecode_warnings(default_synth) == []
