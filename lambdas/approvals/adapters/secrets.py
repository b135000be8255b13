"""The Slack secret (bot token and signing secret) from Secrets Manager through Powertools parameters."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

BOT_TOKEN_KEY = "bot_token"
SIGNING_SECRET_KEY = "signing_secret"


class SecretError(RuntimeError):
    """The secret is missing a key or is not JSON; the message names the key, never the value."""


class SlackSecrets:
    def __init__(self, provider: SecretsProvider, name: str, max_age: int = 300) -> None:
        self._provider = provider
        self._name = name
        self._max_age = max_age

    def _value(self, key: str, force: bool) -> str:
        try:
            data: Any = self._provider.get(self._name, transform="json", max_age=self._max_age, force_fetch=force)
        except (GetParameterError, TransformParameterError) as exc:
            raise SecretError(f"secret {self._name!r} could not be read as JSON ({type(exc).__name__})") from None
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise SecretError(f"secret {self._name!r} has no {key!r} value")
        return value.strip()

    def bot_token(self) -> str:
        return self._value(BOT_TOKEN_KEY, force=False)

    def signing_secret(self, *, force: bool = False) -> str:
        """Cached; ``force=True`` fetches again (after a failed check, in case the secret was rotated)."""
        return self._value(SIGNING_SECRET_KEY, force=force)
