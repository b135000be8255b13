"""``python -m sandbox demo|serve|...``: see sandbox/cli.py."""

from sandbox.cli import main

raise SystemExit(main())
