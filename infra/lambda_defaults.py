"""The one place for Lambda defaults: runtime, architecture, JSON logging, tracing, log retention, code."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Annotations, Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag
from infra.bundling import bytecode_interpreter, lambda_code, missing_interpreter_warning
from infra.constants import (
    AUDIT_WRITER_HANDLER,
    CALLBACK_HANDLER,
    DECIDER_HANDLER,
    HUB_FUNCTIONS_ACTING_IN_SPOKES,
    METRICS_NAMESPACE,
    NOTIFIER_HANDLER,
    PYDANTIC_WITHOUT_PLUGINS,
    SERVICE_NAME,
    hub_role_name,
)
from infra.settings import LATEST_PYTHON_RUNTIME, InfraSettings

# Each handler's function by the name the snapStart setting gives it (settings.SNAPSTART_FUNCTIONS).
SNAPSTART_NAMES: Mapping[str, str] = {
    NOTIFIER_HANDLER: "notifier",
    CALLBACK_HANDLER: "callback",
    DECIDER_HANDLER: "decider",
    AUDIT_WRITER_HANDLER: "auditWriter",
}

# The alias that a SnapStart function's invokers name: it follows the version each deployment publishes.
LIVE_ALIAS = "live"
# CDK warns on every SnapStart function that only published versions are snapshotted; these are published.
SNAPSTART_PUBLISH_WARNING = "@aws-cdk/aws-lambda:snapStartRequirePublish"

XRAY_ACKNOWLEDGMENT = nag.acknowledgment(
    "IAM5[Resource::*]",
    "X-Ray's PutTraceSegments and PutTelemetryRecords accept no resource, so tracing needs Resource '*'.",
)


class LambdaDefaults(Construct):
    """Creates functions that share one code asset and the project's defaults.

    No function sets reserved concurrency: accounts with a low concurrency limit fail to deploy when
    a function reserves some, and the traffic here (one event per job, a few clicks) stays far below
    the unreserved pool.

    SnapStart (the snapStart setting, none by default) applies to published versions only, so a function
    that has it gets a version, published again whenever its code or configuration changes, and an alias
    (``live``) that follows it. Invokers must name the alias, never the function: ``entry(function)`` is
    what to hand to API Gateway, event sources, EventBridge targets and ``configure_async_invoke``. It is
    the function itself when SnapStart is off, so the template then has no version or alias at all.

    What SnapStart costs, on top of requests and duration (AWS Lambda pricing, US East (N. Virginia), as
    published in 2026): the cached snapshot at $0.0000015046 per GB-second for as long as the version is
    live, and $0.0001397998 per GB restored. For one 512 MB function that is 0.5 GB x 2,592,000 s x
    $0.0000015046 = $1.95 a month for the cache, and $0.00007 per restore (a new execution environment).
    Replaced versions are deleted (their snapshots with them), so only the live one is billed.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.code = lambda_code(settings.python_runtime, settings.pip_platform_arch, policy_json=settings.policy_json)
        if bytecode_interpreter(settings.python_runtime) is None:
            # Shown by `cdk synth` / `cdk deploy` and by app.py: the bundle would ship without bytecode.
            Annotations.of(self).add_warning_v2(
                "s3-batch-approvals:bundleWithoutBytecode", missing_interpreter_warning(settings.python_runtime)
            )
        self._aliases: dict[str, lambda_.Alias] = {}

    def function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        timeout: Duration,
        memory_size: int = 512,
        environment: Mapping[str, str] | None = None,
        log_group: logs.ILogGroup | None = None,
        system_log_level: lambda_.SystemLogLevel = lambda_.SystemLogLevel.INFO,
    ) -> lambda_.Function:
        """A function with its own role and, unless ``log_group`` is given, its own log group; with
        SnapStart when the snapStart setting names its handler's function (SNAPSTART_NAMES).

        The role of a function that acts in member accounts (HUB_FUNCTIONS_ACTING_IN_SPOKES) is named
        ``<stack>-<function>-<region>`` (approvals.names.hub_role_name), so that a spoke's trust policy can name it.
        """
        name = SNAPSTART_NAMES[handler]
        snap_start = name in self.settings.snap_start
        if log_group is None:
            log_group = logs.LogGroup(
                scope,
                f"{construct_id}Logs",
                retention=self.settings.log_retention,
                # Debug logs only: the audit trail lives in its own retained log group.
                removal_policy=RemovalPolicy.DESTROY,
            )
        # An explicit role instead of AWSLambdaBasicExecutionRole: write access to this log group only.
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{SERVICE_NAME} {construct_id} function",
            role_name=hub_role_name(Stack.of(scope).stack_name, name, Aws.REGION)
            if name in HUB_FUNCTIONS_ACTING_IN_SPOKES
            else None,
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            scope,
            construct_id,
            code=self.code,
            handler=handler,
            runtime=self.settings.runtime,
            architecture=self.settings.architecture,
            description=description,
            timeout=timeout,
            memory_size=memory_size,
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=system_log_level,
            tracing=lambda_.Tracing.ACTIVE,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
            # A replaced version goes (and its snapshot with it) once the alias has moved to the new one.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY)
            if snap_start
            else None,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **PYDANTIC_WITHOUT_PLUGINS,
                **(environment or {}),
            },
        )
        nag.acknowledge(role, XRAY_ACKNOWLEDGMENT)
        if snap_start:
            Annotations.of(function).acknowledge_warning(
                SNAPSTART_PUBLISH_WARNING, "Published: the live alias follows the function's current version."
            )
            self._aliases[function.node.path] = function.add_alias(LIVE_ALIAS)
        if self.settings.python_runtime != LATEST_PYTHON_RUNTIME:
            nag.acknowledge(
                function,
                nag.acknowledgment(
                    "L1",
                    f"Python {self.settings.python_runtime}, not the latest ({LATEST_PYTHON_RUNTIME}): the bundle "
                    "ships bytecode compiled by an interpreter of the runtime's own version, which the synth machine "
                    "must have (pythonRuntime setting; the README's setup provides 3.12 and 3.13).",
                ),
            )
        return function

    def entry(self, function: lambda_.Function) -> lambda_.IFunction:
        """What invokers name: the live alias when the function has SnapStart, else the function itself.

        Lambda's metrics by function name (``function.metric_*``) cover the alias's invocations too, so
        alarms stay on the function.
        """
        return self._aliases.get(function.node.path, function)
