"""The CDK app's constructs. ``infra.constants`` is plain Python, shared with the sandbox and tests."""
