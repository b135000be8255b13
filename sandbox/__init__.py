"""Local stand-ins for the services the approval loop talks to: S3 Control, Slack, DynamoDB."""
