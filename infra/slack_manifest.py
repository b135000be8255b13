"""Write the Slack app manifest for this deployment.

    python -m infra.slack_manifest [--outputs cdk-outputs.json] [--stack NAME] --out slack-app-manifest.yaml

``--outputs`` is the file ``cdk deploy --outputs-file`` writes; the interactivity Request URL comes from
its SlackInteractivityUrl output, and the Events API and slash command URLs are its siblings on the same
API (``/slack/events``, ``/slack/commands``). Without it the manifest holds placeholder URLs (and a warning
is printed) to fix in Slack's app settings after the first deploy. ``--command`` names the slash command
(default: cdk.json's ``slashCommand``, else ``/s3-approvals``); it must match the deployment's setting.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.constants import (
    DEFAULT_SLASH_COMMAND,
    OUTPUT_SLACK_INTERACTIVITY_URL,
    SLACK_COMMANDS_PATH,
    SLACK_EVENTS_PATH,
    SLACK_INTERACTIONS_PATH,
)

APP_NAME = "S3 Batch Approvals"
# The bot's display name, as people @-mention and /invite it. Slack accepts lowercase letters, digits, "-", "_"
# and "." only (up to 80); a manifest with anything else is refused when it is created.
BOT_DISPLAY_NAME = "s3-batch-approvals"
BOT_DISPLAY_NAME_RULE = re.compile(r"^[a-z0-9._-]{1,80}$")
# Each bot scope, and the Web API calls that need it (the history scopes let a retried notifier find the
# request it already posted, by its message metadata, instead of posting a second one).
BOT_SCOPE_USES: dict[str, str] = {
    "chat:write": "chat.postMessage, chat.update, chat.postEphemeral: post and update requests, tell people why",
    "usergroups:read": "usergroups.users.list: who belongs to the approver groups",
    "users:read": "users.info: approvers' display names",
    "channels:history": "conversations.history in a public channel: find a request already posted",
    "groups:history": "conversations.history in a private channel: find a request already posted",
    "users:read.email": "users.lookupByEmail: the Slack user of a requester whose SSO session is named by email",
}
BOT_SCOPES = list(BOT_SCOPE_USES)
# Scopes a feature needs rather than a Web API call: the slash command (and the Home tab, which needs no scope
# beyond its event subscription: views.publish takes the bot token as it is).
FEATURE_SCOPE_USES: dict[str, str] = {"commands": "the slash command (features.slash_commands)"}
APP_SCOPES = [*BOT_SCOPES, *FEATURE_SCOPE_USES]
HOME_EVENTS = ["app_home_opened"]
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
PLACEHOLDER_URL = "https://REPLACE-ME.execute-api.REGION.amazonaws.com/prod/slack/interactions"


class ManifestError(RuntimeError):
    """The outputs file does not say where the Slack endpoint is."""


def sibling_url(interactions_url: str, path: str) -> str:
    """Another route of the same API: ``…/prod/slack/interactions`` → ``…/prod/<path>``."""
    base = interactions_url.split("?", 1)[0]
    if not base.endswith("/" + SLACK_INTERACTIONS_PATH):
        raise ManifestError(f"the interactivity URL {interactions_url!r} does not end in /{SLACK_INTERACTIONS_PATH}")
    return base.removesuffix(SLACK_INTERACTIONS_PATH) + path


def manifest(request_url: str, command: str = DEFAULT_SLASH_COMMAND) -> dict[str, Any]:
    """The Slack app manifest (schema version 1) as a dict: interactivity, the Home tab and its
    app_home_opened subscription, and the slash command, all on the same API."""
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": APP_NAME,
            "description": "Approve or cancel Amazon S3 Batch Operations jobs before they run",
            "background_color": "#232f3e",
        },
        "features": {
            "app_home": {"home_tab_enabled": True},
            "bot_user": {"display_name": BOT_DISPLAY_NAME, "always_online": False},
            "slash_commands": [
                {
                    "command": command,
                    "url": sibling_url(request_url, SLACK_COMMANDS_PATH),
                    "description": "What waits for your approval, and a job's status",
                    "usage_hint": "pending | status JOB_ID | help",
                    "should_escape": False,
                }
            ],
        },
        "oauth_config": {"scopes": {"bot": list(APP_SCOPES)}},
        "settings": {
            "event_subscriptions": {
                "request_url": sibling_url(request_url, SLACK_EVENTS_PATH),
                "bot_events": list(HOME_EVENTS),
            },
            "interactivity": {"is_enabled": True, "request_url": request_url},
            "org_deploy_enabled": False,
            "socket_mode_enabled": False,
            "token_rotation_enabled": False,
        },
    }


def interactivity_url(outputs: dict[str, Any], stack: str | None = None) -> str:
    """The SlackInteractivityUrl output from ``cdk deploy --outputs-file`` JSON ({stack: {name: value}})."""
    stacks = {stack: outputs.get(stack, {})} if stack else outputs
    urls = {
        name: values[OUTPUT_SLACK_INTERACTIVITY_URL]
        for name, values in stacks.items()
        if isinstance(values, dict) and OUTPUT_SLACK_INTERACTIVITY_URL in values
    }
    if not urls:
        where = f"stack {stack!r}" if stack else "any stack"
        raise ManifestError(f"no {OUTPUT_SLACK_INTERACTIVITY_URL} output for {where} in the outputs file")
    if len(urls) > 1:
        raise ManifestError(f"several stacks have {OUTPUT_SLACK_INTERACTIVITY_URL}: pass --stack one of {sorted(urls)}")
    return str(next(iter(urls.values())))


def _context_command() -> str:
    """cdk.json's ``slashCommand``, else the default (the deployment's setting must be the same)."""
    try:
        context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    except (OSError, json.JSONDecodeError):
        return DEFAULT_SLASH_COMMAND
    return str(context.get("slashCommand") or DEFAULT_SLASH_COMMAND)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.slack_manifest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=Path, help="JSON written by cdk deploy --outputs-file")
    parser.add_argument("--stack", help="the stack to read when the outputs file holds several")
    parser.add_argument("--out", type=Path, required=True, help="where to write the manifest (YAML)")
    parser.add_argument("--command", default=None, help="the slash command (default: cdk.json's slashCommand)")
    args = parser.parse_args(argv)
    command = args.command or _context_command()

    if args.outputs is None:
        url = PLACEHOLDER_URL
        print(
            f"warning: no --outputs given; request_url is the placeholder {PLACEHOLDER_URL}. "
            "Deploy with --outputs-file and run again, or set the URL in the Slack app settings.",
            file=sys.stderr,
        )
    else:
        try:
            url = interactivity_url(json.loads(args.outputs.read_text(encoding="utf-8")), args.stack)
        except (OSError, json.JSONDecodeError, ManifestError) as exc:
            print(f"error: {args.outputs}: {exc}", file=sys.stderr)
            return 2

    try:
        text = yaml.safe_dump(manifest(url, command), sort_keys=False, allow_unicode=True)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} (request_url {url})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
