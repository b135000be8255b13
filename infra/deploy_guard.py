"""``make deploy`` runs this first: it refuses a deployment nobody could use, saying which values to set and how.

    python -m infra.deploy_guard [-c key=value]...     exit 0: ready; exit 2: what is missing, one line each

It reads the settings as the deploy will (cdk.json's context, then ``-c`` overrides) and refuses while the
Slack channel or workspace is cdk.json's placeholder, or nobody could approve a job (no approvers in the
settings, and a policy rule that falls back to them). Synth only warns of the same (a CDK annotation), so the
stack can still be synthesized and inspected before the values are known.
"""

from __future__ import annotations

import sys

from infra.settings import InfraSettings, InfraSettingsError, cdk_json_context, context_overrides


def problems(argv: list[str]) -> list[str]:
    """What ``argv`` (the CDK CLI's arguments: its ``-c key=value`` pairs count, its other flags are skipped)
    leaves unusable."""
    pairs: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--context"):
            pairs += [arg, next(args, "")]
        elif arg.startswith(("--context=", "-c=")):
            pairs += ["-c", arg.split("=", 1)[1]]
    context = {**cdk_json_context(), **context_overrides(pairs)}
    try:
        settings = InfraSettings.from_context(context.get)
    except InfraSettingsError as exc:
        return str(exc).splitlines()
    return settings.placeholders()


def main(argv: list[str] | None = None) -> int:
    found = problems(list(sys.argv[1:] if argv is None else argv))
    if not found:
        return 0
    print("make deploy refuses: this deployment could not be used yet.", file=sys.stderr)
    for problem in found:
        print(f"  - {problem}", file=sys.stderr)
    print("Set the values in cdk.json's context, or pass them: make deploy CDK_ARGS='-c key=value …'.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
