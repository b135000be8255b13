from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.constants import (
    CALLBACK_HANDLER,
    DECIDER_HANDLER,
    DECIDER_TIMEOUT_SECONDS,
    DECISIONS_QUEUE_VISIBILITY_SECONDS,
    DEFAULT_SLASH_COMMAND,
    ENV_SLASH_COMMAND,
    OUTPUT_SLACK_INTERACTIVITY_URL,
    REQUESTS_STATE_INDEX,
    SLACK_COMMANDS_PATH,
    SLACK_EVENTS_PATH,
)
from infra.settings import InfraSettingsError
from infra.slack_api import API_SECURITY_POLICY
from infra.slack_manifest import manifest
from tests.infra.conftest import Synth, as_list, synthesize


def _render(value: object) -> str:
    """A Fn::Join of strings and Refs as text, with each Ref written as <Name>."""
    assert isinstance(value, dict)
    separator, parts = value["Fn::Join"]
    return separator.join(part if isinstance(part, str) else f"<{part['Ref']}>" for part in parts)


def test_slack_posts_to_three_routes_that_proxy_the_raw_request_to_the_callback(default_synth: Synth) -> None:
    # given
    methods = default_synth.props("AWS::ApiGateway::Method")
    paths = {p["PathPart"] for p in default_synth.props("AWS::ApiGateway::Resource")}
    callback_id = default_synth.logical_id(default_synth.stack.slack_api.callback)

    # then: interactions, the Events API and the slash command, each a POST to the same callback
    assert paths == {"slack", "interactions", "events", "commands"}
    assert len(methods) == 3
    for method in methods:
        integration = method["Integration"]
        assert method["HttpMethod"] == "POST"
        assert integration["Type"] == "AWS_PROXY"
        assert integration["IntegrationHttpMethod"] == "POST"
        assert "RequestTemplates" not in integration, "a mapping template would rewrite the signed body"
        assert {"Fn::GetAtt": [callback_id, "Arn"]} in integration["Uri"]["Fn::Join"][1]


def test_the_api_accepts_only_tls_1_3_and_only_through_its_own_endpoint(default_synth: Synth) -> None:
    [api] = default_synth.props("AWS::ApiGateway::RestApi")
    assert api["SecurityPolicy"] == API_SECURITY_POLICY == "SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09"
    assert api["EndpointAccessMode"] == "STRICT"


def test_the_api_takes_form_bodies_as_text(default_synth: Synth) -> None:
    [api] = default_synth.props("AWS::ApiGateway::RestApi")
    assert "BinaryMediaTypes" not in api
    assert api["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_the_prod_stage_is_throttled_traced_and_measured_and_touches_no_account_setting(default_synth: Synth) -> None:
    # given
    [stage] = default_synth.props("AWS::ApiGateway::Stage")

    # then
    assert stage["StageName"] == "prod"
    assert stage["TracingEnabled"] is True
    assert stage["MethodSettings"] == [
        {
            "DataTraceEnabled": False,
            "HttpMethod": "*",
            "MetricsEnabled": True,
            "ResourcePath": "/*",
            "ThrottlingBurstLimit": 20,
            "ThrottlingRateLimit": 10,
        }
    ]
    # by default nothing account-wide: no API Gateway account role, so no access logs (they need it)
    assert default_synth.resources("AWS::ApiGateway::Account") == {}
    assert "AccessLogSetting" not in stage
    assert default_synth.stack.slack_api.access_logs is None
    assert default_synth.resources("AWS::Logs::LogGroup")  # the functions' own logs are still there


def test_opting_into_the_account_role_creates_it_and_logs_access_as_json(custom_synth: Synth) -> None:
    # given: apiGatewayCloudWatchRole=true
    [stage] = custom_synth.props("AWS::ApiGateway::Stage")
    access_logs = custom_synth.stack.slack_api.access_logs
    assert access_logs is not None

    # then
    [account] = custom_synth.props("AWS::ApiGateway::Account")
    assert "CloudWatchRoleArn" in account
    assert _render(stage["AccessLogSetting"]["DestinationArn"]).endswith(
        f":log-group:<{custom_synth.logical_id(access_logs)}>"
    )
    access_log_fields = json.loads(stage["AccessLogSetting"]["Format"])
    assert {"requestId", "ip", "status", "httpMethod", "resourcePath", "responseLength"} <= set(access_log_fields)
    assert custom_synth.resource(access_logs)["Properties"]["RetentionInDays"] == 90


def test_access_logs_alone_use_the_regions_existing_account_role(tmp_path: Path) -> None:
    # given: the region has the role already (set by the organisation), so only the logs are asked for
    synth = synthesize({"apiAccessLogs": "true"}, tmp_path)

    # then
    [stage] = synth.props("AWS::ApiGateway::Stage")
    assert "AccessLogSetting" in stage
    assert synth.resources("AWS::ApiGateway::Account") == {}


def test_throttling_follows_the_settings(custom_synth: Synth) -> None:
    [stage] = custom_synth.props("AWS::ApiGateway::Stage")
    assert stage["MethodSettings"][0]["ThrottlingRateLimit"] == 5
    assert stage["MethodSettings"][0]["ThrottlingBurstLimit"] == 7


def test_the_stack_outputs_the_full_interactivity_url(default_synth: Synth) -> None:
    # given
    outputs = default_synth.json["Outputs"]
    api_id = default_synth.logical_id(default_synth.stack.slack_api.api)
    [stage_id] = default_synth.resources("AWS::ApiGateway::Stage")

    # then
    assert _render(outputs[OUTPUT_SLACK_INTERACTIVITY_URL]["Value"]) == (
        f"https://<{api_id}>.execute-api.<AWS::Region>.<AWS::URLSuffix>/<{stage_id}>/slack/interactions"
    )
    assert not any(name.startswith("SlackApiEndpoint") for name in outputs), "one URL output, not two"


def test_the_stack_outputs_the_table_and_the_queue_urls(default_synth: Synth) -> None:
    # given
    outputs = default_synth.json["Outputs"]
    stack = default_synth.stack

    # then
    expected = {
        "RequestsTableName": stack.storage.requests_table,
        "IdempotencyTableName": stack.storage.idempotency_table,
        "DecisionsQueueUrl": stack.slack_api.decisions_queue,
        "DecisionsDeadLetterQueueUrl": stack.slack_api.decisions_dead_letter_queue,
        "EventDeadLetterQueueUrl": stack.notifier.dead_letter_queue,
        "AuditDeadLetterQueueUrl": stack.audit.dead_letter_queue,
    }
    for name, construct in expected.items():
        assert outputs[name]["Value"] == {"Ref": default_synth.logical_id(construct)}, name


def test_decisions_wait_in_a_tls_only_queue_that_redrives_after_five_failures(default_synth: Synth) -> None:
    # given
    api = default_synth.stack.slack_api
    queue = default_synth.resource(api.decisions_queue)["Properties"]
    dead_letters = default_synth.resource(api.decisions_dead_letter_queue)["Properties"]

    # then
    assert queue["VisibilityTimeout"] == DECISIONS_QUEUE_VISIBILITY_SECONDS == 6 * 60, "six times the decider's timeout"
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [default_synth.logical_id(api.decisions_dead_letter_queue), "Arn"]},
        "maxReceiveCount": 5,
    }
    assert "FifoQueue" not in queue
    assert dead_letters == {"MessageRetentionPeriod": 14 * 24 * 3600, "SqsManagedSseEnabled": True}
    for construct in (api.decisions_queue, api.decisions_dead_letter_queue):
        statements = _queue_policy(default_synth, construct)
        [tls] = [s for s in statements if s["Action"] == "sqs:*"]
        assert tls["Effect"] == "Deny"
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert all(s["Effect"] == "Deny" for s in statements), "the policies only take away"


def _queue_policy(synth: Synth, queue: object) -> list[dict]:
    queue_id = synth.logical_id(queue)
    [policy] = [p for p in synth.props("AWS::SQS::QueuePolicy") if {"Ref": queue_id} in p["Queues"]]
    statements: list[dict] = policy["PolicyDocument"]["Statement"]
    return statements


def test_only_the_callbacks_role_may_send_to_the_decisions_queue(default_synth: Synth) -> None:
    # given
    api = default_synth.stack.slack_api
    callback_role_id = default_synth.resource(api.callback)["Properties"]["Role"]["Fn::GetAtt"][0]

    # when
    [only_callback] = [s for s in _queue_policy(default_synth, api.decisions_queue) if s["Action"] == "sqs:SendMessage"]

    # then
    assert only_callback["Effect"] == "Deny"
    assert only_callback["Principal"] == {"AWS": "*"}
    assert only_callback["Resource"] == {"Fn::GetAtt": [default_synth.logical_id(api.decisions_queue), "Arn"]}
    assert only_callback["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": [callback_role_id, "Arn"]}}
    }


def test_the_decider_takes_one_decision_at_a_time_and_reports_failures_per_message(default_synth: Synth) -> None:
    # given
    api = default_synth.stack.slack_api
    decider_id = default_synth.logical_id(api.decider)
    [mapping] = [
        p for p in default_synth.props("AWS::Lambda::EventSourceMapping") if p["FunctionName"] == {"Ref": decider_id}
    ]

    # then
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [default_synth.logical_id(api.decisions_queue), "Arn"]}
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_callback_is_quick_and_the_decider_patient(default_synth: Synth) -> None:
    # given
    callback = default_synth.function_props(CALLBACK_HANDLER)
    decider = default_synth.function_props(DECIDER_HANDLER)

    # then
    assert (callback["Timeout"], callback["MemorySize"]) == (10, 1024)
    assert decider["Timeout"] == DECIDER_TIMEOUT_SECONDS == 60


def test_a_lease_longer_than_the_queue_allows_stops_synth(tmp_path: Path) -> None:
    # when
    with pytest.raises(InfraSettingsError) as raised:
        synthesize({"decisionLeaseSeconds": "400"}, tmp_path)

    # then
    message = str(raised.value)
    assert "'decisionLeaseSeconds'" in message
    assert "400" in message
    assert "360" in message


def test_the_callback_queues_decisions_but_cannot_touch_jobs(default_synth: Synth) -> None:
    # given
    api = default_synth.stack.slack_api
    actions = default_synth.actions_of(api.callback)
    [send] = [s for s in default_synth.role_statements(api.callback) if "sqs:SendMessage" in s["Action"]]

    # then
    assert send["Resource"] == {"Fn::GetAtt": [default_synth.logical_id(api.decisions_queue), "Arn"]}
    assert "secretsmanager:GetSecretValue" in actions
    assert not any(action.startswith(("s3:", "dynamodb:")) for action in actions)


def test_the_decider_consumes_the_queue_and_updates_job_status(default_synth: Synth) -> None:
    # given
    api = default_synth.stack.slack_api
    actions = default_synth.actions_of(api.decider)

    # then
    assert {"s3:DescribeJob", "s3:UpdateJobStatus", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions
    assert {"dynamodb:PutItem", "secretsmanager:GetSecretValue"} <= actions
    assert "s3:ListJobs" not in actions


def test_the_decider_runs_at_most_five_decisions_at_once_without_reserving_concurrency(default_synth: Synth) -> None:
    # given
    queue = {"Fn::GetAtt": [default_synth.logical_id(default_synth.stack.slack_api.decisions_queue), "Arn"]}
    # then
    [mapping] = [m for m in default_synth.props("AWS::Lambda::EventSourceMapping") if m["EventSourceArn"] == queue]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert all("ReservedConcurrentExecutions" not in f for f in default_synth.props("AWS::Lambda::Function"))


# -- the approver's queue: the Events API and slash command routes, their IAM, the manifest -------------


def _route_resources(synth: Synth) -> dict[str, str]:
    """Path part -> logical ID of the API's resources."""
    return {r["Properties"]["PathPart"]: lid for lid, r in synth.resources("AWS::ApiGateway::Resource").items()}


def test_the_events_and_commands_routes_sit_beside_interactions_under_slack(default_synth: Synth) -> None:
    # given
    resources = default_synth.resources("AWS::ApiGateway::Resource")
    ids = _route_resources(default_synth)

    # then
    assert SLACK_EVENTS_PATH == "slack/events"
    assert SLACK_COMMANDS_PATH == "slack/commands"
    for part in ("interactions", "events", "commands"):
        assert resources[ids[part]]["Properties"]["ParentId"] == {"Ref": ids["slack"]}
    routed = {m["ResourceId"]["Ref"] for m in default_synth.props("AWS::ApiGateway::Method")}
    assert routed == {ids["interactions"], ids["events"], ids["commands"]}


def test_api_gateway_may_invoke_the_callback_on_each_route(default_synth: Synth) -> None:
    # given
    callback_id = default_synth.logical_id(default_synth.stack.slack_api.callback)
    permissions = [
        p
        for p in default_synth.props("AWS::Lambda::Permission")
        if p["FunctionName"] == {"Fn::GetAtt": [callback_id, "Arn"]}
    ]

    # then: one for each route (and its test invocation)
    arns = [_render(p["SourceArn"]) for p in permissions]
    for path in ("slack/interactions", "slack/events", "slack/commands"):
        assert any(arn.endswith(f"/POST/{path}") and "/test-invoke-stage/" not in arn for arn in arns), path


def test_the_slash_commands_name_reaches_the_callback_and_the_decider(default_synth: Synth) -> None:
    for handler in (CALLBACK_HANDLER, DECIDER_HANDLER):
        variables = default_synth.function_props(handler)["Environment"]["Variables"]
        assert variables[ENV_SLASH_COMMAND] == DEFAULT_SLASH_COMMAND == "/s3-approvals"


def test_a_malformed_slash_command_name_stops_synth(tmp_path: Path) -> None:
    with pytest.raises(InfraSettingsError) as raised:
        synthesize({"slashCommand": "s3 approvals"}, tmp_path)
    assert "'slashCommand'" in str(raised.value)


def _index_arn(synth: Synth, index: str) -> dict[str, object]:
    table_id = synth.logical_id(synth.stack.storage.requests_table)
    return {"Fn::Join": ["", [{"Fn::GetAtt": [table_id, "Arn"]}, f"/index/{index}"]]}


def test_the_decider_queries_exactly_the_state_index_and_nothing_wider(default_synth: Synth) -> None:
    # given
    api, storage = default_synth.stack.slack_api, default_synth.stack.storage
    statements = default_synth.role_statements(api.decider)
    table = json.dumps({"Fn::GetAtt": [default_synth.logical_id(storage.requests_table), "Arn"]})

    # when
    queried = [r for s in statements if as_list(s["Action"]) == ["dynamodb:Query"] for r in as_list(s["Resource"])]
    on_table = {a for s in statements if table in map(json.dumps, as_list(s["Resource"])) for a in as_list(s["Action"])}

    # then: Query on the state index behind the Home tab (never the table or index/*), and the HOME# and
    # SLACKDELIVERY# items written with the GetItem and UpdateItem the decider has already: no PutItem, no Scan
    assert list(map(json.dumps, queried)) == [json.dumps(_index_arn(default_synth, REQUESTS_STATE_INDEX))]
    assert not any("*" in json.dumps(r) for r in queried)
    assert on_table == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert "dynamodb:Scan" not in default_synth.actions_of(api.decider)


def test_the_manifest_adds_the_home_tab_its_event_and_the_slash_command() -> None:
    # given
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/slack/interactions"

    # when
    app = manifest(url, "/approvals")

    # then
    assert app["features"]["app_home"] == {"home_tab_enabled": True}
    assert app["settings"]["event_subscriptions"] == {
        "request_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/slack/events",
        "bot_events": ["app_home_opened"],
    }
    [command] = app["features"]["slash_commands"]
    assert command["command"] == "/approvals"
    assert command["url"] == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/slack/commands"
    assert command["should_escape"] is False
    assert "commands" in app["oauth_config"]["scopes"]["bot"]
    assert app["settings"]["interactivity"]["request_url"] == url
