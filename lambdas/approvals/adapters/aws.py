"""AWS clients from the default boto3 session, created once per cold start.

The default session honours the standard settings: ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>``, ``HTTP(S)_PROXY``/``NO_PROXY``, ``AWS_REGION`` and credentials.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from approvals.coldstart import long_lived

# Standard retry mode backs off on throttling and 5xx; timeouts keep a slow service from
# eating the whole invocation.
RETRYING = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)
QUICK = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=2)


@cache
def session() -> boto3.session.Session:
    """One session per execution environment: its loaders and endpoint data are shared by every client
    (made by the first ``client()`` call, inside its ``long_lived`` step)."""
    return boto3.session.Session()


@cache
@long_lived()  # a client lives as long as the execution environment
def client(service: str, region: str | None = None, quick: bool = False) -> Any:
    """One client per service, region and timeout profile for the life of the execution environment."""
    return session().client(service, region_name=region, config=QUICK if quick else RETRYING)
