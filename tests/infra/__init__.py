"""Infrastructure tests: synthesize the CDK app offline and assert properties of the template."""

import os

# jsii prints a Node end-of-life banner unless this is set before aws_cdk is first imported.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
