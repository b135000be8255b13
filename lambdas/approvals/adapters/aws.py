"""AWS clients from the default boto3 session, created once per cold start.

The default session honours the standard settings: ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>``, ``HTTP(S)_PROXY``/``NO_PROXY``, ``AWS_REGION`` and credentials.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from approvals.coldstart import long_lived
from approvals.domain.ports import AccountNotServed, AccountUnreachable
from approvals.names import spoke_role_name

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


# -- one hub, many accounts -------------------------------------------------------------------------

SESSION_SECONDS = 900  # STS's shortest session: one job's calls take seconds
REFRESH_BEFORE_SECONDS = 120  # a session this close to its end is replaced before the next call
MAX_SESSIONS = 64  # sessions kept (ended ones, then the oldest, go first); each holds a client or two
STS_BUSY = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable"})
SESSION_NAME = re.compile(r"[^\w+=,.@-]", re.ASCII)  # STS: 2 to 64 of these (ASCII word characters)


def session_name(function: str, job_id: str | None) -> str:
    """``<function>-<job ID>`` (or ``-reconcile``): the spoke account's CloudTrail then says which hub function
    acted and for which job. STS allows 2 to 64 of ``[\\w+=,.@-]``."""
    return SESSION_NAME.sub("-", f"{function}-{job_id or 'reconcile'}")[:64]


class AccountClients:
    """Clients that act in a job's own account and region: the function's own credentials in the hub's account
    and region, a spoke role's (STS AssumeRole) in a member's, and none anywhere else (``AccountNotServed``).

    ``hub_account_id`` None: not a hub, one account as before (every call with the function's own credentials).
    Each session is for one function and one job (its name says both) and is kept until near its end.
    Thread-safe.
    """

    def __init__(
        self,
        *,
        function: str,
        hub_account_id: str | None,
        hub_region: str | None,
        places: Iterable[tuple[str, str]],
        role_prefix: str,
        own_client: Callable[..., Any] | None = None,
        sts: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._function = function
        self._hub = (hub_account_id, hub_region)
        self._places = frozenset(places)
        self._role_prefix = role_prefix
        self._own_client = own_client or (lambda service, region, config=None: _own(service, region, config))
        self._sts = sts or (lambda: client("sts", hub_region))
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[tuple[str, str, str], tuple[float, dict[str, str], dict[Any, Any]]] = OrderedDict()

    @property
    def is_hub(self) -> bool:
        return self._hub[0] is not None

    def serves(self, account_id: str, region: str) -> bool:
        """Whether the hub acts in this account and region at all."""
        return not self.is_hub or (account_id, region) == self._hub or (account_id, region) in self._places

    def role_arn(self, account_id: str, region: str) -> str:
        partition = session().get_partition_for_region(region)
        return f"arn:{partition}:iam::{account_id}:role/{spoke_role_name(self._role_prefix, region)}"

    def __call__(
        self, service: str, account_id: str, region: str, job_id: str | None = None, config: Config | None = None
    ) -> Any:
        """A ``service`` client acting in ``account_id``/``region`` (for ``job_id``, or the account as a whole)."""
        if not self.is_hub or (account_id, region) == self._hub:
            return self._own_client(service, region, config)
        if (account_id, region) not in self._places:
            raise AccountNotServed(
                f"this hub does not serve account {account_id} in {region} (not its own, not a listed member): "
                "nothing was done there"
            )
        name = session_name(self._function, job_id)
        key = (account_id, region, name)
        with self._lock:
            kept = self._sessions.get(key)
            if kept is not None and kept[0] - self._clock() > REFRESH_BEFORE_SECONDS:
                self._sessions.move_to_end(key)
                clients = kept[2]
                if (service, config) not in clients:
                    clients[(service, config)] = _assumed(service, region, config, kept[1])
                return clients[(service, config)]
        credentials, expires_at = self._assume(account_id, region, name)
        made = _assumed(service, region, config, credentials)
        with self._lock:
            self._sessions[key] = (expires_at, credentials, {(service, config): made})
            if len(self._sessions) > MAX_SESSIONS:
                now = self._clock()
                for ended in [k for k, kept in self._sessions.items() if kept[0] - now <= REFRESH_BEFORE_SECONDS]:
                    del self._sessions[ended]
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return made

    def _assume(self, account_id: str, region: str, name: str) -> tuple[dict[str, str], float]:
        arn = self.role_arn(account_id, region)
        try:
            answer = self._sts().assume_role(RoleArn=arn, RoleSessionName=name, DurationSeconds=SESSION_SECONDS)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "")) or "error"
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in STS_BUSY or status >= 500:
                why = "STS kept throttling or failing after retries; tried again later"
            else:
                why = "is the spoke stack deployed there, trusting this hub?"
            raise AccountUnreachable(
                f"the hub cannot act in account {account_id} ({region}): AssumeRole of {arn} failed ({code}); {why}"
            ) from exc
        except BotoCoreError as exc:
            raise AccountUnreachable(
                f"the hub cannot act in account {account_id} ({region}): STS did not answer ({type(exc).__name__})"
            ) from exc
        given = answer["Credentials"]
        credentials = {
            "aws_access_key_id": given["AccessKeyId"],
            "aws_secret_access_key": given["SecretAccessKey"],
            "aws_session_token": given["SessionToken"],
        }
        expiration = given["Expiration"]
        expires_at = expiration.timestamp() if hasattr(expiration, "timestamp") else self._clock() + SESSION_SECONDS
        return credentials, expires_at


def _own(service: str, region: str, config: Config | None) -> Any:
    if config is None:
        return client(service, region)
    return own_clients_with_config(service, region, config)


@cache
def own_clients_with_config(service: str, region: str, config: Config) -> Any:
    return session().client(service, region_name=region, config=config)


def _assumed(service: str, region: str, config: Config | None, credentials: Mapping[str, str]) -> Any:
    return session().client(service, region_name=region, config=config or RETRYING, **credentials)
