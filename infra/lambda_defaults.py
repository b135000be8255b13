"""The one place for Lambda defaults: runtime, architecture, JSON logging, tracing, log retention, code."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag
from infra.bundling import lambda_code
from infra.constants import METRICS_NAMESPACE, PYDANTIC_WITHOUT_PLUGINS, SERVICE_NAME
from infra.settings import LATEST_PYTHON_RUNTIME, InfraSettings

XRAY_ACKNOWLEDGMENT = nag.acknowledgment(
    "IAM5[Resource::*]",
    "X-Ray's PutTraceSegments and PutTelemetryRecords accept no resource, so tracing needs Resource '*'.",
)


class LambdaDefaults(Construct):
    """Creates functions that share one code asset and the project's defaults.

    No function sets reserved concurrency: accounts with a low concurrency limit fail to deploy when
    a function reserves some, and the traffic here (one event per job, a few clicks) stays far below
    the unreserved pool.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.code = lambda_code(settings.python_runtime, settings.pip_platform_arch, policy_json=settings.policy_json)

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
        """A function with its own role and, unless ``log_group`` is given, its own log group."""
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
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **PYDANTIC_WITHOUT_PLUGINS,
                **(environment or {}),
            },
        )
        nag.acknowledge(role, XRAY_ACKNOWLEDGMENT)
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
