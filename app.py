#!/usr/bin/env python3
"""The CDK app. Pure: no AWS calls, no git, no network (pip fetches wheels when bundling).

``python app.py`` (what ``make synth`` runs) synthesizes the hub into cdk.out/ with cdk.json's context, and the
spoke stack too when the ``spoke`` context is given (``-c spoke='{"hubEventBusArn": "…"}'``, infra/spoke.py);
``python app.py -c key=value`` overrides a setting the way the CDK CLI's ``-c`` does. Under the CLI
(``npx aws-cdk synth -c key=value``) the CLI passes cdk.json and ``-c`` itself, and they win.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from infra.settings import InfraSettingsError, SpokeSettings, cdk_json_context, context_overrides
from infra.spoke import add_spoke_stack
from infra.stack import build_app

ROOT = Path(__file__).resolve().parent


def overrides(argv: list[str]) -> dict[str, Any]:
    """``-c key=value`` / ``--context key=value`` pairs from the command line (infra.settings.context_overrides)."""
    return context_overrides(argv)


def main(argv: list[str]) -> int:
    context = {**cdk_json_context(ROOT / "cdk.json"), **overrides(argv)}
    # The CDK CLI says where it wants the assembly in CDK_OUTDIR; on our own we write cdk.out/.
    outdir = os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out")
    try:
        app, _ = build_app(context, outdir=outdir)
        spoke = SpokeSettings.from_context(app.node.try_get_context)
        if spoke is not None:
            add_spoke_stack(app, spoke)
    except InfraSettingsError as exc:
        for problem in str(exc).splitlines():
            print(f"error: {problem}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
