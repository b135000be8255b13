"""The one place that creates the Powertools Logger, Metrics and Tracer for every function.

``tracer`` is made on first use (module ``__getattr__``): creating it imports the X-Ray SDK, which
the callback skips to keep its cold start inside Slack's 3-second window.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

    tracer: Tracer

logger = Logger()
metrics = Metrics()

# The SDKs' own loggers print wire data at DEBUG: botocore the GetSecretValue response (the signing
# secret and the bot token), slack_sdk request bodies with trigger_id and tokens. Whatever level the
# application logs at, they stay at WARNING, where they print no payloads.
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "slack_sdk", "slack_bolt")
for _name in SDK_LOGGERS:
    logging.getLogger(_name).setLevel(logging.WARNING)


@cache
def _tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer()


def __getattr__(name: str) -> Any:
    if name == "tracer":
        return _tracer()
    raise AttributeError(name)


__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
