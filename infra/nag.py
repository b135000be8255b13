"""cdk-nag's AWS Solutions checks, through CDK's Validations API (cdk-nag 3 is a validation plugin).

Every accepted finding is acknowledged on the narrowest construct, with one sentence of reason. The
acknowledgments and their reasons end up in cdk.out/validation-report.json ("suppressedViolations").
CDK keeps one reason per rule ID and construct (the last one given), so a reason that covers a
second cause says so, e.g. ListJobs's "(as does X-Ray)".
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stage, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK = "AwsSolutions"


def add_checks(app: Stage) -> None:
    """Run the checks at every synth: an unacknowledged error makes ``app.synth()`` raise."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledgment(rule: str, reason: str) -> Acknowledgment:
    """``rule`` as cdk-nag names the finding, e.g. ``"SQS3"`` or ``"IAM5[Resource::*]"``."""
    return Acknowledgment(id=f"{PACK}::{PACK}-{rule}", reason=reason)


def acknowledge(construct: IConstruct, *acknowledgments: Acknowledgment) -> None:
    Validations.of(construct).acknowledge(*acknowledgments)
