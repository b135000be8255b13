"""Create or update the Slack app from its manifest, with an app configuration token (Slack's manifest API).

    SLACK_CONFIG_TOKEN=xoxe.xoxp-… make slack-app [APP_ID=A…] [STACK_OUTPUTS=cdk-outputs.json]
    python -m infra.slack_app --manifest slack-app-manifest.yaml [--app-id A…] [--api-url URL]

The manifest is the one ``make slack-manifest`` writes. It is validated first (``apps.manifest.validate``;
each problem is printed with where it is), then the app is created (``apps.manifest.create``) or, with
``--app-id``, updated (``apps.manifest.update``). The token is read from ``SLACK_CONFIG_TOKEN`` (or asked for,
without echo, on a terminal); it is never written anywhere, printed or logged, and neither are the
credentials Slack returns for a new app (copy the signing secret from the app's *Basic Information* page into
the stack's secret). App configuration tokens come from api.slack.com/apps (*Your App Configuration Tokens*)
and expire after 12 hours. Pasting the manifest at api.slack.com/apps works as well as ever.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

TOKEN_VARIABLE = "SLACK_CONFIG_TOKEN"
SLACK_API = "https://slack.com/api/"


def _token() -> str | None:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token and sys.stdin.isatty():
        token = getpass.getpass("Slack app configuration token (xoxe.xoxp-…): ").strip()
    return token or None


def apply(client: WebClient, manifest: dict[str, Any], app_id: str | None) -> tuple[str, bool]:
    """Validate, then create or update. Returns (app ID, created). Raises SlackApiError with Slack's answer."""
    text = json.dumps(manifest)
    client.apps_manifest_validate(manifest=text, **({"app_id": app_id} if app_id else {}))
    if app_id:
        client.apps_manifest_update(app_id=app_id, manifest=text)
        return app_id, False
    created = client.apps_manifest_create(manifest=text)
    return str(created["app_id"]), True


def explain(error: SlackApiError) -> list[str]:
    """What Slack refused, line by line: its error code, and each manifest problem with where it is."""
    data = error.response.data if isinstance(error.response.data, dict) else {}
    code = str(data.get("error") or "unknown_error")
    lines = [f"Slack refused it: {code}"]
    for problem in data.get("errors") or []:
        if isinstance(problem, dict):
            lines.append(f"  {problem.get('pointer', '?')}: {problem.get('message', '')}")
    hints = {
        "invalid_auth": "the token is not a valid app configuration token (they expire after 12 hours)",
        "token_expired": "the app configuration token expired (12 hours): make a new one at api.slack.com/apps",
        "not_allowed_token_type": "use an app configuration token (xoxe.xoxp-…), not the bot token",
        "invalid_app_id": "no app with that ID for this token: leave APP_ID out to create one",
    }
    if code in hints:
        lines.append(f"  {hints[code]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.slack_app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=Path("slack-app-manifest.yaml"))
    parser.add_argument("--app-id", help="update this app (A…); without it a new app is created")
    parser.add_argument("--api-url", default=SLACK_API, help=f"Slack's Web API (default {SLACK_API})")
    args = parser.parse_args(argv)
    try:
        manifest = yaml.safe_load(args.manifest.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        print(f"error: {args.manifest}: {exc} (write it with make slack-manifest)", file=sys.stderr)
        return 2
    token = _token()
    if token is None:
        print(f"error: set {TOKEN_VARIABLE} to an app configuration token (api.slack.com/apps)", file=sys.stderr)
        return 2
    try:
        app_id, created = apply(WebClient(token=token, base_url=args.api_url), manifest, args.app_id)
    except SlackApiError as exc:
        for line in explain(exc):
            print(line, file=sys.stderr)
        return 1
    if created:
        print(f"created Slack app {app_id}: install it at https://api.slack.com/apps/{app_id}/install-on-team,")
        print("then put its Bot User OAuth Token and Signing Secret in the stack's secret (README, Deploying).")
    else:
        print(f"updated Slack app {app_id}; if Slack asks, reinstall it to grant new scopes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
