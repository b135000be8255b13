"""Names the functions emit and the stack watches. Plain constants: infra/constants.py loads this file."""

SERVICE_NAME = "s3-batch-approvals"
METRICS_NAMESPACE = "S3BatchApprovals"
# The slash command: its default name (the manifest and the functions share it), and the names Slack accepts.
DEFAULT_SLASH_COMMAND = "/s3-approvals"
SLASH_COMMAND_PATTERN = r"^/[a-z0-9_-]{1,31}$"  # Slack: a slash, then up to 32 characters in all
# The lifecycle schedule's constant input: {"source": SERVICE_NAME, "detail-type": LIFECYCLE_TICK}.
LIFECYCLE_TICK = "Lifecycle Tick"
# The reconciliation schedule's rate (the stack's ReconcileSchedule; the notifier numbers its runs by it).
RECONCILE_MINUTES = 15

METRIC_APPROVAL_REQUESTED = "ApprovalRequested"
METRIC_APPROVED = "Approved"
METRIC_CANCELLED = "Cancelled"
METRIC_REFUSED = "DecisionRefused"
METRIC_SIGNATURE_REJECTED = "SignatureRejected"
METRIC_DECISION_FAILED = "DecisionFailed"
METRIC_TIME_TO_DECISION = "TimeToDecision"
METRIC_EVENT_DROPPED = "EventDropped"
METRIC_DUPLICATE_EVENT = "DuplicateEvent"
METRIC_NOTICE_FAILED = "NoticeFailed"
METRIC_DECISION_UNVERIFIED = "DecisionUnverified"  # queued work without valid proof of where it came from
METRIC_DUPLICATE_DECISION = "DuplicateDecision"  # a delivery of a click whose claim is held: retried later
METRIC_DECISION_STUCK = "DecisionStuck"  # a claim left past its lease, finished by the reconciliation
METRIC_AUDIT_TAMPERED = "AuditTampered"  # an audit item was overwritten or deleted
METRIC_FOREIGN_TEAM = "ForeignTeamRefused"  # a signed request from a Slack workspace the app does not serve
METRIC_POLICY_DECISION = "PolicyDecision"  # a job cancelled (deny) or confirmed (approve) by a policy rule
METRIC_REQUESTER_REFUSED = "RequesterRefused"  # the job's creator tried to approve it
METRIC_VOTE_RECORDED = "VoteRecorded"  # an approval counted towards a rule's quorum
METRIC_REMINDER_SENT = "ReminderSent"  # a reminder (or an escalation) posted in a pending request's thread
METRIC_REQUEST_EXPIRED = "RequestExpired"  # a request reached its deadline undecided (cancelled or left)

# One hub, many accounts. The hub acts in a member account and region through the role the spoke stack makes
# there: SPOKE_ROLE_PREFIX-<region> (IAM names are global to an account, so one role per region, each allowed
# only that region's jobs). The hub's own account and region need none: its functions' roles act there.
DEFAULT_SPOKE_ROLE_PREFIX = "s3-batch-approvals-spoke"
ROLE_NAME_PATTERN = r"^[A-Za-z0-9_+=,.@-]{1,64}$"  # IAM: up to 64 of these (ASCII) characters
SPOKE_ROLE_PREFIX_MAX = 64 - len("-ap-southeast-4")  # room for the longest region name


def spoke_role_name(prefix: str, region: str) -> str:
    """The spoke role in one region of a member account (the spoke stack makes it, the hub assumes it)."""
    return f"{prefix}-{region}"


def hub_role_name(stack_name: str, function: str, region: str) -> str:
    """The role of a hub function that acts in member accounts (``notifier``, ``decider``): named, so that a
    spoke's trust policy can name it before the hub exists and without a lookup."""
    return f"{stack_name}-{function}-{region}"


HUB_FUNCTIONS_ACTING_IN_SPOKES = ("notifier", "decider")
METRIC_ACCOUNT_UNREACHABLE = "AccountUnreachable"  # the hub could not assume a member account's spoke role
