"""The sandbox from a terminal.

    python -m sandbox demo                      the scripted story (what `make demo` runs)
    python -m sandbox serve                     start the stand-ins and keep them running (`make sandbox`)
    python -m sandbox create-job [--objects N] [--description TEXT] [--no-confirmation]
                                 [--as alice|gina|pipeline|ARN] [--bucket NAME] [--operation tagging|lambda]
                                 [--account hub|spoke|ACCOUNT_ID] [--job-id ID]
    python -m sandbox explain JOB               which policy rule the job meets, and why (sandbox/policy.yaml)
    python -m sandbox jobs                      jobs and their statuses
    python -m sandbox messages                  the Slack channel, rendered
    python -m sandbox click JOB approve|cancel --as alice|gina|mallory [--account hub|spoke|ACCOUNT_ID]
    python -m sandbox reason "why" --as alice   submit the cancel-reason modal last opened for that person
    python -m sandbox audit JOB [--account …]   the job's audit trail
    python -m sandbox advance DURATION          move the clock (15m, 2h, 1d, 1h30m): reminders, escalation
                                                and expiry happen as the minute's tick would see them
    python -m sandbox home --as alice           open that person's Home tab in the app, rendered
    python -m sandbox command "/s3-approvals pending" --as alice
                                                run the slash command (pending, status JOB, help) as that person

`serve` writes .sandbox/state.json with the address of its control port; the other commands use it.
People: alice (approver by user ID), gina (approver through the user group), mallory (not an approver).
Jobs are created as an IAM principal (--as; default pipeline, a role nobody in Slack is): alice's IAM Identity
Center session maps to her by email, gina's admin role by the policy's identities; a creator may not approve.
Accounts: hub (123456789012, us-east-1, "platform") and spoke (210987654321, us-west-2, "analytics"), one Slack
channel for both; --job-id gives a new job a chosen ID (the same ID in two accounts is two jobs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import sys
import threading
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import ValidationError

STATE = Path(__file__).resolve().parent.parent / ".sandbox" / "state.json"  # wherever you run it from


def _people() -> dict[str, Any]:
    from sandbox.local import PEOPLE

    return {p.name: p for p in PEOPLE}


class _Control(BaseHTTPRequestHandler):
    deployment: Any = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        try:
            self._reply(200, self._dispatch(self.path, body))
        except ValidationError as exc:
            self._reply(400, {"error": exc.errors()[0]["msg"].removeprefix("Value error, ")})
        except KeyError as exc:
            self._reply(400, {"error": str(exc.args[0]) if exc.args else "not found"})
        except (LookupError, ValueError) as exc:
            self._reply(400, {"error": str(exc)})
        except Exception as exc:
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _dispatch(self, path: str, body: dict[str, Any]) -> Any:
        from sandbox.local import CHANNEL

        d = self.deployment
        if path == "/jobs/create":
            operation = OPERATIONS[str(body.get("operation") or "tagging")]
            job = d.create_job(
                description=body.get("description") or "Sandbox job",
                object_count=int(body["objects"] if body.get("objects") is not None else 1200),
                confirmation=bool(body.get("confirmation", True)),
                principal=str(body.get("as") or "pipeline"),
                manifest_bucket=str(body.get("bucket") or "example-manifests"),
                operation=operation,
                account=str(body.get("account") or "hub"),
                job_id=body.get("job_id") or None,
            )
            return {"job_id": job}
        if path == "/explain":
            return {"text": _explain(d, str(body["job_id"]))}
        if path == "/jobs":
            listed = []
            for account, _region in d.accounts():
                for j in d.jobs.job_ids(account):
                    listed.append({"job_id": j, "account": account, "status": d.jobs.job_status(j, account_id=account)})
            return listed
        if path == "/messages":
            shown = []
            for m in d.slack.messages(CHANNEL):
                if m.thread_ts in (None, m.ts):
                    replies = "".join(f"\n   ↳ {r.text}" for r in d.slack.thread(CHANNEL, m.ts))
                    shown.append(d.slack.render_message(CHANNEL, m.ts) + replies)
            return shown
        if path == "/ephemerals":
            return [f"to {e.user}: {e.text}" for e in d.slack.ephemerals()]
        person = _people().get(str(body.get("as", "")))
        if path in {"/click", "/reason"} and person is None:
            raise LookupError(f"unknown person {body.get('as')!r}: use alice, gina or mallory")
        account = body.get("account") or None
        if path == "/click":
            action = {"approve": "approve_job", "cancel": "cancel_job"}[body["action"]]
            message = d.request_message(body["job_id"], account=account)
            if not any(b.get("action_id") == action for b in message.buttons()):
                raise LookupError(f"job {body['job_id']} has no {body['action']} button any more: it was decided")
            # What this click did, and only this one: its audit records (they carry the API request ID), the
            # form opened for this person about this job, and what this person was told about this job since.
            job_id = _job_id_in(message)
            views_before = {v.id for v in d.slack.views()}
            told_before = len(d.slack.ephemerals(person.id))
            click = d.click(body["job_id"], action, person, account=account)
            d.settle()
            outcome = [
                {"event": r.event_type.value, "reason": r.reason, "status_update_reason": r.status_update_reason}
                for r in d.audit(job_id, account=account)
                if click.request_id is not None and r.request_id == click.request_id
            ]
            opened = [
                v
                for v in d.slack.views()
                if v.id not in views_before and v.user == person.id and job_id in (v.private_metadata or "")
            ]
            notes = [e.text for e in d.slack.ephemerals(person.id)[told_before:] if job_id in e.text]
            return {
                "http_status": click.status,
                "body": click.body,
                "job_id": job_id,
                "modal": bool(opened),
                "outcome": outcome,
                "told": notes[-1] if notes else None,
            }
        if path == "/reason":
            click = d.submit_reason(person, body["reason"])
            d.settle()
            return {"http_status": click.status, "body": click.body}
        if path == "/audit":
            job_id = _one_job(d, str(body["job_id"]), account)
            return {"job_id": job_id, "records": [r.to_log() for r in d.audit(job_id, account=account)]}
        if path == "/advance":
            by = parse_duration(str(body.get("by", "")))
            ticks = d.advance(by)
            done: dict[str, int] = {}
            for tick in ticks:
                for key, count in tick.items():
                    if key not in ("outcome", "due") and isinstance(count, int):
                        done[key] = done.get(key, 0) + count
            return {"now": d.now().isoformat(timespec="minutes"), "ticks": len(ticks), "done": done}
        if path in {"/home", "/command"} and person is None:
            raise LookupError(f"unknown person {body.get('as')!r}: use alice, gina or mallory")
        if path == "/home":
            return {"text": d.home(person)}
        if path == "/command":
            return {"replies": d.command(str(body["text"]), person)}
        raise LookupError(f"unknown command {path}")


def _job_id_in(message: Any) -> str:
    """The job ID of an approval request (its metadata)."""
    return str(((message.metadata or {}).get("event_payload") or {}).get("job_id"))


def _one_job(d: Any, given: str, account: str | None) -> str:
    """The one job whose ID is ``given`` or starts with it (as `click` takes it); LookupError otherwise."""
    from sandbox.local import account_id_of

    places = d.accounts() if account is None else [(account_id_of(account), None)]
    found = sorted({j for place, _ in places for j in d.jobs.job_ids(place) if j.startswith(given)})
    if given in found:
        return given
    if not found:
        raise LookupError(f"no job {given!r} in the sandbox: `python -m sandbox jobs` lists them")
    if len(found) > 1:
        raise LookupError(f"{given!r} is the start of {len(found)} job IDs ({', '.join(found[:5])}): give more of it")
    return found[0]


_DURATION = re.compile(r"^(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?$")


def parse_duration(text: str) -> timedelta:
    """``15m``, ``2h``, ``1d``, ``1h30m``, ``90s``: how far ``advance`` moves the clock."""
    found = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or found is None or not any(found.groupdict().values()):
        raise ValueError(f"{text!r} is not a duration: write it like 15m, 2h, 1d or 1h30m")
    parts = {key: int(value) for key, value in found.groupdict().items() if value}
    days, hours, minutes, seconds = (parts.get(unit, 0) for unit in "dhms")
    by = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if by > timedelta(days=31):
        raise ValueError("advance at most 31 days at a time (S3 fails a job left Suspended for 30 days)")
    return by


# --operation: what the sandbox's jobs can do (None: the default tagging job).
OPERATIONS: dict[str, dict[str, Any] | None] = {
    "tagging": None,
    "lambda": {"LambdaInvoke": {"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:sandbox-scrub"}},
}


def _explain(d: Any, job_id: str) -> str:
    """The policy's explanation for a sandbox job, as `python -m approvals.policy explain` prints it."""
    from approvals.domain.policy import JobFacts, evaluate
    from approvals.models.job import Job, JobRef
    from approvals.models.policy import load_policy_file
    from approvals.policy import explain

    if not d.policy_file:
        raise LookupError("the sandbox runs without a policy")
    policy = load_policy_file(d.policy_file)
    account_id, region = d.jobs.job_account(job_id)
    ref = JobRef(account_id=account_id, region=region, job_id=job_id)
    job = Job.model_validate(d.jobs.describe_job(account_id, job_id, region=region))
    tags = {t["Key"]: t["Value"] for t in d.jobs.get_job_tagging(account_id, job_id, region=region)["Tags"]}
    record = d.request_record(job_id, account=account_id)
    requester = record.requester.principal_arn if record is not None and record.requester else None
    text = explain(evaluate(policy, JobFacts.of(job, ref, tags=tags, requester=requester)), policy)
    return f"policy {d.policy_file}\nrequester {requester or 'not known yet'}\n{text}"


def _running() -> bool:
    """A sandbox is running when its state file names a control port that answers."""
    if not STATE.exists():
        return False
    try:
        _call("/jobs")
    except SystemExit:
        return False
    return True


def serve() -> int:
    import os

    from sandbox import web
    from sandbox.demo import quiet_terminal
    from sandbox.local import LocalDeployment

    web_port = os.environ.get("SANDBOX_WEB_PORT", "0")  # the page's port (0: a free one)
    if not web_port.isdigit() or int(web_port) > 65535:
        print(f"SANDBOX_WEB_PORT={web_port!r} is not a port number (0 picks a free one)", file=sys.stderr)
        return 2

    if _running():
        print(f"a sandbox is already running (state in {STATE}); stop it first", file=sys.stderr)
        return 1
    quiet_terminal()
    deployment = LocalDeployment(auto_advance=True, advance_interval=1.0).start()
    _Control.deployment = deployment
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Control)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page, page_url = web.start(deployment, int(web_port))
    except OSError as exc:
        print(f"the web page cannot listen on 127.0.0.1:{web_port}: {exc.strerror}", file=sys.stderr)
        server.shutdown()
        deployment.stop()
        return 1
    STATE.parent.mkdir(exist_ok=True)
    STATE.write_text(
        json.dumps(
            {
                "control": f"http://127.0.0.1:{server.server_address[1]}",
                "web": page_url,
                "callback_url": deployment.callback_url,
                "slack": deployment.slack.url,
                "s3control": deployment.s3.url,
                "moto": deployment.aws.url,
                "requests_table": deployment.aws.requests_table,
                "audit_table": deployment.aws.audit_table,
            },
            indent=2,
        )
    )
    print(
        f"sandbox running; state in {STATE}.\n"
        f"Open {page_url} to see the channel and click (SANDBOX_WEB_PORT sets its port).\n"
        "Or, in another terminal, from the repository root:\n"
        "  PYTHONPATH=lambdas:. .venv/bin/python -m sandbox create-job        (prints the job ID)\n"
        "  PYTHONPATH=lambdas:. .venv/bin/python -m sandbox messages\n"
        "  PYTHONPATH=lambdas:. .venv/bin/python -m sandbox click <JOB> approve --as alice\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    page.shutdown()
    page.server_close()
    server.shutdown()
    deployment.stop()
    STATE.unlink(missing_ok=True)
    return 0


def _call(path: str, body: dict[str, Any] | None = None) -> Any:
    if not STATE.exists():
        raise SystemExit("no sandbox is running: start one with `make sandbox` (python -m sandbox serve)")
    control = json.loads(STATE.read_text())["control"]
    request = urllib.request.Request(
        control + path,
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(json.loads(error.read()).get("error", f"HTTP {error.code}")) from None
    except urllib.error.URLError:
        raise SystemExit("the sandbox does not answer: is `make sandbox` still running?") from None


def build_parser() -> argparse.ArgumentParser:
    """The command line: every subcommand says what it does, every option what it is and its default."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    from approvals import __version__

    parser.add_argument("--version", action="version", version=f"s3-batch-approvals {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    people = ["alice", "gina", "mallory"]

    def command_parser(name: str, what: str) -> argparse.ArgumentParser:
        """A subcommand whose --help says what it does and each option's default."""
        return sub.add_parser(name, help=what, description=what, formatter_class=argparse.ArgumentDefaultsHelpFormatter)

    command_parser("demo", "run the whole loop once, checked, and print it")
    command_parser("serve", "start the stand-ins and keep them running (what make sandbox runs)")
    create = command_parser("create-job", "create an S3 Batch Operations job (printed: its ID)")
    create.add_argument("--objects", type=int, default=1200, help="how many objects its manifest lists")
    create.add_argument("--description", default="Sandbox job", help="the job's description")
    create.add_argument(
        "--no-confirmation", action="store_true", help="create it without confirmation (it runs; no request)"
    )
    create.add_argument("--as", dest="principal", default="pipeline", help="alice, gina, pipeline or an IAM ARN")
    create.add_argument("--bucket", default="example-manifests", help="the manifest's bucket")
    create.add_argument("--operation", choices=sorted(OPERATIONS), default="tagging", help="what the job does")
    create.add_argument("--account", default="hub", help="hub, spoke or a 12-digit account ID")
    create.add_argument("--job-id", default=None, help="sandbox-only: the ID the new job gets")
    explain_cmd = command_parser("explain", "which policy rule a job meets, and why")
    explain_cmd.add_argument("job_id", help="the job's ID")
    command_parser("jobs", "list the jobs, with their account and status")
    command_parser("messages", "print the channel, rendered, with threads and ephemeral notices")
    click = command_parser("click", "click Approve or Cancel on a job's request, as a person")
    click.add_argument("job_id", help="the job's ID, or its start")
    click.add_argument("action", choices=["approve", "cancel"], help="which button")
    click.add_argument("--as", dest="person", required=True, choices=people, help="who clicks")
    click.add_argument("--account", default=None, help="hub, spoke or an account ID (when the ID is in both)")
    reason = command_parser("reason", "submit the reason form a Cancel click opened")
    reason.add_argument("reason", help="why the job is cancelled")
    reason.add_argument("--as", dest="person", required=True, choices=people, help="who submits it")
    audit = command_parser("audit", "a job's audit trail, as make audit prints it")
    audit.add_argument("job_id", help="the job's ID, or its start")
    audit.add_argument("--account", default=None, help="hub, spoke or an account ID (when the ID is in both)")
    audit.add_argument("--json", action="store_true", help="one JSON object per record, as the audit log has them")
    advance = command_parser("advance", "move the product's clock; the lifecycle ticks due on the way run")
    advance.add_argument("duration", help="how far to move the clock: 15m, 2h, 1d, 1h30m")
    home = command_parser("home", "open a person's Home tab in the app and print it")
    home.add_argument("--as", dest="person", required=True, choices=people, help="whose Home tab")
    command = command_parser("command", 'run the slash command, e.g. "/s3-approvals pending"')
    command.add_argument("text", help="the command and its text")
    command.add_argument("--as", dest="person", required=True, choices=people, help="who runs it")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    if args.command == "demo":
        from sandbox.demo import main as demo

        return demo()
    if args.command == "serve":
        return serve()
    if args.command == "create-job":
        result = _call(
            "/jobs/create",
            {
                "objects": args.objects,
                "description": args.description,
                "confirmation": not args.no_confirmation,
                "as": args.principal,
                "bucket": args.bucket,
                "operation": args.operation,
                "account": args.account,
                "job_id": args.job_id,
            },
        )
        print(result["job_id"])
    elif args.command == "explain":
        print(_call("/explain", {"job_id": args.job_id})["text"])
    elif args.command == "jobs":
        for job in _call("/jobs"):
            print(f"{job['job_id']}  {job['account']}  {job['status']}")
    elif args.command == "messages":
        for text in _call("/messages"):
            print(text)
        for note in _call("/ephemerals"):
            print(f"(ephemeral) {note}")
    elif args.command == "click":
        result = _call(
            "/click", {"job_id": args.job_id, "action": args.action, "as": args.person, "account": args.account}
        )
        print(f"the callback answered HTTP {result['http_status']} {result['body']}".rstrip())
        for record in result.get("outcome") or []:
            said = record.get("status_update_reason") or record.get("reason") or ""
            print(f"this click: {record['event'].replace('_', ' ')}" + (f" ({said})" if said else ""))
        if result.get("modal"):
            print(f'the reason form opened for {args.person}: python -m sandbox reason "why" --as {args.person}')
        if result.get("told"):
            print(f"Slack told {args.person} (only they see it): {result['told']}")
    elif args.command == "reason":
        result = _call("/reason", {"reason": args.reason, "as": args.person})
        answer = json.loads(result["body"]) if result["body"].startswith("{") else {}
        if answer.get("response_action") == "errors":
            print(f"the form refused it: {'; '.join(answer['errors'].values())}")
            return 1
        print(f"the callback answered HTTP {result['http_status']}: the form closed and the decision was queued")
    elif args.command == "audit":
        from approvals.audit_cli import format_record
        from approvals.models.records import AuditRecord

        found = _call("/audit", {"job_id": args.job_id, "account": args.account})
        if not found["records"]:
            print(f"no audit records for job {found['job_id']}", file=sys.stderr)
            return 1
        for record in found["records"]:
            print(json.dumps(record) if args.json else format_record(AuditRecord.model_validate(record)))
    elif args.command == "advance":
        try:
            parse_duration(args.duration)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        result = _call("/advance", {"by": args.duration})
        done = ", ".join(f"{key.replace('_', ' ')}: {count}" for key, count in sorted(result["done"].items()))
        print(f"the clock is now {result['now']} UTC; {result['ticks']} lifecycle ticks ran ({done or 'nothing due'})")
    elif args.command == "home":
        print(_call("/home", {"as": args.person})["text"])
    elif args.command == "command":
        replies = _call("/command", {"text": args.text, "as": args.person})["replies"]
        for reply in replies or ["(no reply)"]:
            print(f"(only {args.person} sees this) {reply}")
    return 0
