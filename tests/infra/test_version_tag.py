from __future__ import annotations

from approvals import __version__
from tests.infra.conftest import Synth


def test_the_stack_carries_the_products_version_as_a_tag(default_synth: Synth) -> None:
    # given: the cloud assembly the CDK CLI deploys (stack tags go on the stack, and CloudFormation puts
    # them on every resource that takes tags)
    artifact = default_synth.app.synth().get_stack_by_name(default_synth.stack.stack_name)

    # then
    assert artifact.tags == {"service": "s3-batch-approvals", "version": __version__}
