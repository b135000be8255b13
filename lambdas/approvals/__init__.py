"""s3-batch-approvals: a human sign-off, from Slack, before an Amazon S3 Batch Operations job runs."""

# The product's version: the stack's `version` tag, the command-line tools' --version, pyproject.toml and the
# top entry of CHANGELOG.md all say this (tests/unit/test_version.py keeps them in step).
__version__ = "0.13.0"
