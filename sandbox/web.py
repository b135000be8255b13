"""The sandbox's Slack channel as a web page on loopback: the messages, the Home tab and the modal as Slack
would show them, with buttons that go the whole real way (a signed ``block_actions`` through the API Gateway
front to the real callback, as ``python -m sandbox click`` sends it).

    GET  /                     the page (web_page.html: HTML, CSS and plain JavaScript; nothing fetched)
    GET  /state?person=alice   JSON: the channel, that person's notices, open modal and Home tab, the jobs
                               (and with &job=ID, that job's DescribeJob and audit trail)
    POST /click                {"job_id" or "ts", "action_id", "person"[, "account"][, "surface": "home"]}
    POST /submit               {"person", "reason"}: the open modal, submitted as a signed view_submission
    POST /close-modal          {"person"}: the modal's Back (Slack sends nothing; the page stops showing it)
    POST /create-job           {"objects", "description", "confirmation", "as", "bucket", "operation",
                                "account", "job_id"}: the CLI's create-job options
    POST /advance              {"by": "15m"}
    POST /home                 {"person"}: open the Home tab (Slack's app_home_opened)

Bad input is HTTP 400 with ``{"error": "what was wrong"}``. GET changes nothing; POST takes JSON only and
only from the page's own origin, so another site cannot drive the sandbox through a visitor's browser.

Mrkdwn becomes HTML here, in ``mrkdwn_to_html`` (a pure function): ``/state`` adds an ``html`` key beside
the ``text`` of every text object, and the page puts only those keys into the DOM as HTML.
"""

from __future__ import annotations

import html
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox.cli import _Control, _job_id_in

PAGE = Path(__file__).resolve().parent / "web_page.html"
PERSONS = ("alice", "gina", "mallory")
# The sandbox's user groups, by the handle Slack would show for them.
GROUPS = {"S0APPROVERS": "approvers", "S0ONCALL01": "oncall"}
ACTIONS = {"approve_job": "approve", "cancel_job": "cancel"}

# -- mrkdwn → HTML ---------------------------------------------------------------------------------

_SLACK_ENTITY = re.compile(r"&(amp|lt|gt);")
_FENCE = re.compile(r"```(.*?)```", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_CONTROL = re.compile(r"<([^<>\n]*)>")
_SLOT = re.compile(r"\x00([0-9]+)\x00")


# Slack's emphasis: the marker opens after a start, a space or punctuation and closes before one, the text
# touches both markers, and it stays on one line.
def _emphasis(marker: str) -> re.Pattern[str]:
    m = re.escape(marker)
    return re.compile(rf"(?<![^\W_])(?<!{m}){m}([^\s{m}](?:[^{m}\n]*[^\s{m}])?){m}(?![^\W_])(?!{m})")


_BOLD, _ITALIC, _STRIKE = _emphasis("*"), _emphasis("_"), _emphasis("~")
_SAFE_SCHEMES = frozenset({"http", "https"})


def unslack(text: str) -> str:
    """Slack's three entities (``&amp;``, ``&lt;``, ``&gt;``) back to characters, in one pass."""
    return _SLACK_ENTITY.sub(lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m[1]], text)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _link(target: str, label: str | None) -> str | None:
    """An <a> for an http(s) URL; None for anything else (javascript:, data:, mailto:, relative…)."""
    url = unslack(target).strip()
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() not in _SAFE_SCHEMES or not parsed.netloc or any(c in url for c in "\"'\\ \t"):
        return None
    shown = unslack(label) if label else url
    return f'<a href="{_esc(url)}" target="_blank" rel="noopener noreferrer">{_esc(shown)}</a>'


def _control(inner: str, people: Mapping[str, str], groups: Mapping[str, str]) -> str:
    """One ``<…>`` of Slack's: a mention, a group or channel mention, a special mention, a date or a link.
    Anything it cannot show safely is shown as the text it is."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        user = target[1:]
        name = people.get(user) or unslack(label) or user
        return f'<span class="mention" data-user="{_esc(user)}">@{_esc(name)}</span>'
    if target.startswith("!subteam^"):
        group = target.removeprefix("!subteam^")
        name = unslack(label).lstrip("@") or groups.get(group) or group
        return f'<span class="mention group" data-group="{_esc(group)}">@{_esc(name)}</span>'
    if target.startswith("#"):
        name = unslack(label) or target[1:]
        return f'<span class="mention channel">#{_esc(name)}</span>'
    if target in {"!here", "!channel", "!everyone"}:
        return f'<span class="mention special">@{_esc(target[1:])}</span>'
    if target.startswith("!date^") and label:
        return _esc(unslack(label))
    return _link(target, label or None) or _esc(unslack(f"<{inner}>"))


def _inline(line: str, people: Mapping[str, str], groups: Mapping[str, str]) -> str:
    """One line: code spans and ``<…>`` kept whole, the rest escaped, then *bold*, _italics_ and ~strike~."""
    slots: list[str] = []

    def keep(markup: str) -> str:
        slots.append(markup)
        return f"\x00{len(slots) - 1}\x00"

    line = _CONTROL.sub(lambda m: keep(_control(m[1], people, groups)), line)
    line = _INLINE_CODE.sub(lambda m: keep(f"<code>{_esc(unslack(m[1]))}</code>"), line)
    line = _esc(unslack(line))
    for pattern, tag in ((_BOLD, "b"), (_ITALIC, "i"), (_STRIKE, "s")):
        line = pattern.sub(rf"<{tag}>\1</{tag}>", line)
    while _SLOT.search(line):  # a code span's markup may hold a link's slot: at most two passes
        line = _SLOT.sub(lambda m: slots[int(m[1])], line)
    return line


def _lines(text: str, people: Mapping[str, str], groups: Mapping[str, str]) -> str:
    """Lines between code blocks: a run of lines starting with ``>`` is one quote; newlines are <br>."""
    out: list[str] = []
    quote: list[str] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            out.append("<br>".join(plain))
            plain.clear()
        if quote:
            out.append("<blockquote>" + "<br>".join(quote) + "</blockquote>")
            quote.clear()

    for line in text.split("\n"):
        if line.startswith(">"):
            if plain:
                flush()
            quote.append(_inline(line[1:].removeprefix(" "), people, groups))
        else:
            if quote:
                flush()
            plain.append(_inline(line, people, groups))
    flush()
    return "".join(out)


def mrkdwn_to_html(
    text: str, *, people: Mapping[str, str] | None = None, groups: Mapping[str, str] | None = None
) -> str:
    """Slack mrkdwn as Slack shows it, as HTML that holds no markup but what this function writes.

    ``people``: user ID → display name (``<@U…>``); ``groups``: user-group ID → handle (``<!subteam^S…>``).
    Links only for http and https; every other character is escaped, Slack's ``&amp;``/``&lt;``/``&gt;`` shown
    as the characters they stand for."""
    people, groups = people or {}, groups or {}
    text = text.replace("\x00", "")
    out: list[str] = []
    position = 0
    for fence in _FENCE.finditer(text):
        before = text[position : fence.start()].removesuffix("\n")
        if before:
            out.append(_lines(before, people, groups))
        code = unslack(fence[1]).removeprefix("\n").removesuffix("\n")
        out.append(f'<pre class="code-block">{_esc(code)}</pre>')
        position = fence.end()
        if text.startswith("\n", position):
            position += 1
    rest = text[position:]
    if rest or not out:
        out.append(_lines(rest, people, groups))
    return "".join(out)


def with_html(value: Any, render: Callable[[str], str]) -> Any:
    """A copy of Block Kit ``value`` whose every text object also has ``html``: mrkdwn rendered, plain_text
    escaped (what the page shows; it puts no other string into the DOM as HTML)."""
    if isinstance(value, list):
        return [with_html(item, render) for item in value]
    if not isinstance(value, Mapping):
        return value
    found = {key: with_html(item, render) for key, item in value.items()}
    if isinstance(value.get("text"), str) and value.get("type") in {"mrkdwn", "plain_text"}:
        found["html"] = render(value["text"]) if value["type"] == "mrkdwn" else _esc(value["text"])
    return found


# -- the server -------------------------------------------------------------------------------------


class BadRequest(ValueError):
    """What was wrong with a request (HTTP 400)."""


def _text(body: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise BadRequest(f"{key!r} is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key!r} must be a string")
    return value


class WebState:
    """What the page adds to the sandbox: which modals a person closed with Back (Slack itself sends nothing)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dismissed: set[str] = set()


class _Web(_Control):
    """The page's server: its own routes for the page, and the control server's logic for what it does."""

    deployment: Any = None
    web: WebState
    host_names: frozenset[str] = frozenset()

    # -- plumbing

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        if content_type.startswith("text/html"):
            self.send_header(
                "Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            )
        self.end_headers()
        self.wfile.write(data)

    def _reply(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body, default=str).encode(), "application/json")

    def _host_ok(self) -> bool:
        """Only requests addressed to this loopback server (no DNS rebinding of another name onto it)."""
        return (self.headers.get("Host") or "") in self.host_names

    def do_GET(self) -> None:
        if not self._host_ok():
            self._reply(400, {"error": "this server answers only at its loopback address"})
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/":
            self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
            return
        if url.path != "/state":
            self._reply(404, {"error": f"no page {url.path}"})
            return
        query = urllib.parse.parse_qs(url.query)
        try:
            job = query.get("job", [""])[0] or None
            self._reply(200, self.state(query.get("person", [""])[0], job))
        except (BadRequest, LookupError) as exc:
            self._reply(400, {"error": _message(exc)})
        except Exception as exc:
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})

    def do_POST(self) -> None:
        origin = self.headers.get("Origin")
        if not self._host_ok() or (origin is not None and urllib.parse.urlsplit(origin).netloc not in self.host_names):
            self._reply(403, {"error": "only the sandbox's own page may do this"})
            return
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            self._reply(400, {"error": "send a JSON body (Content-Type: application/json)"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise BadRequest("the body is not JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            self._reply(200, self.act(self.path, body))
        except (BadRequest, LookupError, ValueError) as exc:
            self._reply(400, {"error": _message(exc)})
        except Exception as exc:
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})

    # -- what the page reads

    def _person(self, name: Any) -> Any:
        from sandbox.local import PEOPLE

        found = next((p for p in PEOPLE if p.name == name), None)
        if found is None:
            raise BadRequest(f"unknown person {name!r}: use {', '.join(PERSONS)}")
        return found

    def _render(self, text: str) -> str:
        from sandbox.local import PEOPLE

        return mrkdwn_to_html(text, people={p.id: p.display_name for p in PEOPLE}, groups=GROUPS)

    def _message(self, message: Any) -> dict[str, Any]:
        payload = (message.metadata or {}).get("event_payload") or {}
        return {
            "ts": message.ts,
            "text": message.text,
            "html": self._render(message.text or ""),
            "blocks": with_html(message.blocks or [], self._render),
            "edited": message.edited,
            "job_id": payload.get("job_id"),
            "account_id": payload.get("account_id"),
        }

    def _open_modal(self, person: Any) -> Any:
        """The modal Slack shows ``person``: the last one opened for them (as ``submit_reason`` takes it),
        unless submitted or closed."""
        opened = [v for v in self.deployment.slack.views() if v.user in (person.id, None)]
        with self.web.lock:
            return opened[-1] if opened and opened[-1].id not in self.web.dismissed else None

    def state(self, person_name: str, job: str | None) -> dict[str, Any]:
        from sandbox.local import CHANNEL

        d = self.deployment
        person = self._person(person_name)
        messages = []
        for m in d.slack.messages(CHANNEL):
            shown = self._message(m)
            shown["replies"] = [self._message(r) for r in d.slack.thread(CHANNEL, m.ts)]
            messages.append(shown)
        ephemerals = [
            {
                "ts": e.ts,
                "text": e.text,
                "html": self._render(e.text),
                "blocks": with_html(e.blocks or [], self._render),
            }
            for e in d.slack.ephemerals(person.id)
        ]
        modal = self._open_modal(person)
        home = d.slack.home_view(person.id)
        jobs = []
        for account, region in d.accounts():
            for job_id in d.jobs.job_ids(account):
                described = d.jobs.describe_job(account, job_id, region=region)
                jobs.append({"job_id": job_id, "account": account, "region": region, "status": described["Status"]})
        detail = None
        if job:
            chosen = next((j for j in jobs if j["job_id"] == job), None)
            if chosen is None:
                raise BadRequest(f"no job {job!r} in the sandbox")
            from approvals.audit_cli import format_record

            records = d.audit(job, account=chosen["account"])
            detail = {
                **chosen,
                "describe": d.jobs.describe_job(chosen["account"], job, region=chosen["region"]),
                "audit": [r.to_log() for r in records],
                "audit_lines": [format_record(r) for r in records],  # as `make audit` prints them
            }
        return {
            "person": {"name": person.name, "id": person.id, "display_name": person.display_name},
            "now": d.now().isoformat(timespec="minutes"),
            "messages": messages,
            "ephemerals": ephemerals,
            "modal": None if modal is None else {"id": modal.id, "view": with_html(modal.view, self._render)},
            "home": None if home is None else with_html(home, self._render),
            "jobs": jobs,
            "job": detail,
        }

    # -- what the page does

    def act(self, path: str, body: dict[str, Any]) -> Any:
        if path == "/click":
            return self._click(body)
        if path == "/submit":
            person = self._person(body.get("person"))
            reason = _text(body, "reason")
            modal = self._open_modal(person)
            if modal is None:
                raise BadRequest(f"no form is open for {person.name}: click Cancel first")
            result = self._dispatch("/reason", {"as": person.name, "reason": reason})
            answer = json.loads(result["body"]) if str(result["body"]).startswith("{") else {}
            errors = answer.get("errors") if answer.get("response_action") == "errors" else None
            if result["http_status"] == 200 and not errors:
                with self.web.lock:
                    self.web.dismissed.add(modal.id)
            return {**result, "errors": errors}
        if path == "/close-modal":
            modal = self._open_modal(self._person(body.get("person")))
            if modal is not None:
                with self.web.lock:
                    self.web.dismissed.add(modal.id)
            return {"closed": modal is not None}
        if path == "/create-job":
            options = {key: body.get(key) for key in ("description", "bucket", "as", "account", "job_id")}
            for key, value in options.items():
                if value is not None and not isinstance(value, str):
                    raise BadRequest(f"{key!r} must be a string")
            objects = body.get("objects")
            if objects is not None and (isinstance(objects, bool) or not isinstance(objects, int) or objects < 0):
                raise BadRequest("'objects' must be a whole number, 0 or more")
            confirmation = body.get("confirmation", True)
            if not isinstance(confirmation, bool):
                raise BadRequest("'confirmation' must be true or false")
            operation = body.get("operation") or "tagging"
            if operation not in ("tagging", "lambda"):
                raise BadRequest(f"unknown operation {operation!r}: use tagging or lambda")
            created = self._dispatch(
                "/jobs/create", {**options, "objects": objects, "confirmation": confirmation, "operation": operation}
            )
            self.deployment.settle()
            return created
        if path == "/advance":
            return self._dispatch("/advance", {"by": _text(body, "by")})
        if path == "/home":
            person = self._person(body.get("person"))
            deliveries = self.deployment.open_home(person)
            return {"delivered": [d.status for d in deliveries]}
        raise LookupError(f"no action {path}")

    def _click(self, body: dict[str, Any]) -> Any:
        from sandbox.local import CHANNEL

        d = self.deployment
        person = self._person(body.get("person"))
        action_id = _text(body, "action_id")
        if action_id not in ACTIONS:
            raise BadRequest(f"unknown action_id {action_id!r}: use {' or '.join(ACTIONS)}")
        job_id, ts, account = _text(body, "job_id", required=False), _text(body, "ts", required=False), None
        if (job_id is None) == (ts is None):
            raise BadRequest("give the message's 'ts' or the 'job_id' (one of them)")
        if body.get("surface") == "home":
            if job_id is None:
                raise BadRequest("a Home tab click names its 'job_id'")
            click = d.click_home(job_id, action_id, person)
            d.settle()
            d.open_home(person)
            return {"http_status": click.status, "body": click.body, "job_id": job_id}
        if ts is not None:
            try:
                message = d.slack.message(CHANNEL, ts)
            except KeyError:
                raise BadRequest(f"no message {ts} in the channel") from None
            job_id = _job_id_in(message)
            account = ((message.metadata or {}).get("event_payload") or {}).get("account_id")
            if job_id == "None":
                raise BadRequest(f"message {ts} is not an approval request")
        else:
            account = _text(body, "account", required=False)
        return self._dispatch(
            "/click", {"job_id": job_id, "action": ACTIONS[action_id], "as": person.name, "account": account}
        )


def _message(exc: Exception) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc).removeprefix("Value error, ")


def make_server(deployment: Any, port: int = 0) -> ThreadingHTTPServer:
    """The page's server for ``deployment``, bound to 127.0.0.1:``port`` (0: a free one); not yet serving."""

    class Handler(_Web):
        pass

    Handler.deployment, Handler.web = deployment, WebState()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    bound = server.server_address[1]
    Handler.host_names = frozenset({f"127.0.0.1:{bound}", f"localhost:{bound}"})
    return server


def start(deployment: Any, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve the page in a daemon thread; returns the server (``shutdown()`` stops it) and its URL."""
    server = make_server(deployment, port)
    threading.Thread(target=server.serve_forever, name="sandbox-web", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"
