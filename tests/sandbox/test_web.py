"""The sandbox's channel as a web page, at the HTTP level: the page and its hooks, /state, clicks that go the
whole real way (signed block_actions through the API Gateway front), the reason modal, refusals, bad input,
and the mrkdwn → HTML renderer the page relies on for its safety."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox import web
from sandbox.local import ALICE, LocalDeployment

HOOKS = (
    'id="person"',
    'id="confirm"',
    'id="confirm-yes"',
    'id="confirm-no"',
    'id="modal"',
    'id="modal-submit"',
    'id="create-job"',
    'id="advance-by"',
    'id="advance"',
    'id="job-state"',
    'id="audit"',
    'id="home"',
    "dataset.actionId",  # button[data-action-id]
    "ephemeral",
    '"reply"',
    'textarea", { id: "reason"',
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[LocalDeployment, str]]:
    """A sandbox and its web page's server, as `python -m sandbox serve` runs them."""
    with LocalDeployment() as deployment:
        server, url = web.start(deployment)
        try:
            yield deployment, url.rstrip("/")
        finally:
            server.shutdown()
            server.server_close()


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


def _post(url: str, body: Any, *, content_type: str = "application/json", raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _state(base: str, person: str = "alice", job: str | None = None) -> dict[str, Any]:
    status, body, _ = _get(f"{base}/state?person={person}" + (f"&job={job}" if job else ""))
    assert status == 200, body
    return dict(json.loads(body))


def _create(sandbox: tuple[LocalDeployment, str], **options: Any) -> str:
    """A job created through the page, moved on to Suspended (as `make sandbox`'s running clock does)."""
    d, base = sandbox
    status, created = _post(f"{base}/create-job", {"objects": 500, **options})
    assert status == 200, created
    d.advance_until(str(created["job_id"]), "Suspended")
    return str(created["job_id"])


def _request_of(state: dict[str, Any], job_id: str) -> dict[str, Any]:
    return next(m for m in state["messages"] if m["job_id"] == job_id)


def _texts(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"])


def test_the_page_is_served_with_its_dom_hooks_and_no_outside_resources(sandbox: tuple[LocalDeployment, str]) -> None:
    # when
    status, page, content_type = _get(sandbox[1] + "/")
    # then
    text = page.decode()
    assert status == 200
    assert content_type.startswith("text/html")
    for hook in HOOKS:
        assert hook in text, hook
    assert "http://" not in text.split("<script>")[1]
    assert "https://" not in text.split("<script>")[1]
    assert "<script src" not in text
    assert "<link" not in text


def test_state_lists_a_created_jobs_request_with_rendered_text(sandbox: tuple[LocalDeployment, str]) -> None:
    # given
    base = sandbox[1]
    job_id = _create(sandbox, description="Re-tag *raw* events")
    # when
    state = _state(base, job=job_id)
    # then
    request = _request_of(state, job_id)
    header = request["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["html"]
    assert any(b.get("type") == "actions" for b in request["blocks"])
    assert "approve_job" in _texts(request)
    assert "cancel_job" in _texts(request)
    assert {"job_id": job_id, "account": "123456789012", "region": "us-east-1", "status": "Suspended"} in state["jobs"]
    assert state["job"]["describe"]["Status"] == "Suspended"
    assert state["person"]["name"] == "alice"
    assert state["modal"] is None


def test_alice_approving_with_a_click_decides_the_job_and_updates_the_message(
    sandbox: tuple[LocalDeployment, str],
) -> None:
    # given
    d, base = sandbox
    job_id = _create(sandbox)
    ts = _request_of(_state(base), job_id)["ts"]
    # when
    status, clicked = _post(f"{base}/click", {"ts": ts, "action_id": "approve_job", "person": "alice"})
    d.settle()
    # then
    assert status == 200
    assert clicked["http_status"] == 200
    assert d.jobs.describe_job("123456789012", job_id, region="us-east-1")["Status"] == "Ready"
    state = _state(base, job=job_id)
    request = _request_of(state, job_id)
    assert request["edited"]
    assert "approve_job" not in _texts(request)
    assert "Approved" in _texts(request)
    assert any(line for line in state["job"]["audit_lines"] if "approv" in line.lower())


def test_cancel_opens_the_modal_and_submitting_a_reason_cancels_the_job(sandbox: tuple[LocalDeployment, str]) -> None:
    # given
    d, base = sandbox
    job_id = _create(sandbox)
    # when
    status, clicked = _post(f"{base}/click", {"job_id": job_id, "action_id": "cancel_job", "person": "alice"})
    opened = _state(base)["modal"]
    submitted = _post(f"{base}/submit", {"person": "alice", "reason": "wrong prefix"})
    d.settle()
    # then
    assert status == 200
    assert clicked["modal"] is True
    assert opened is not None
    assert job_id in opened["view"]["private_metadata"]
    assert any(b["type"] == "input" for b in opened["view"]["blocks"])
    assert submitted[0] == 200
    assert submitted[1]["errors"] is None
    assert _state(base)["modal"] is None
    described = d.jobs.describe_job("123456789012", job_id, region="us-east-1")
    assert described["Status"] in {"Cancelled", "Cancelling"}
    assert "wrong prefix" in json.dumps(described, default=str)


def test_back_closes_the_modal_and_a_later_submit_is_refused(sandbox: tuple[LocalDeployment, str]) -> None:
    # given
    base = sandbox[1]
    job_id = _create(sandbox)
    _post(f"{base}/click", {"job_id": job_id, "action_id": "cancel_job", "person": "alice"})
    # when
    closed = _post(f"{base}/close-modal", {"person": "alice"})
    refused = _post(f"{base}/submit", {"person": "alice", "reason": "changed my mind"})
    # then
    assert closed == (200, {"closed": True})
    assert _state(base)["modal"] is None
    assert refused[0] == 400
    assert "no form is open for alice" in refused[1]["error"]


def test_mallorys_click_is_refused_and_she_sees_the_ephemeral(sandbox: tuple[LocalDeployment, str]) -> None:
    # given
    d, base = sandbox
    job_id = _create(sandbox)
    # when
    status, clicked = _post(f"{base}/click", {"job_id": job_id, "action_id": "approve_job", "person": "mallory"})
    # then
    assert status == 200
    assert clicked["told"]
    assert job_id in clicked["told"]
    assert d.jobs.describe_job("123456789012", job_id, region="us-east-1")["Status"] == "Suspended"
    mallory, alice = _state(base, "mallory"), _state(base, "alice")
    assert any(job_id in e["text"] and e["html"] for e in mallory["ephemerals"])
    assert not any(job_id in e["text"] for e in alice["ephemerals"])


def test_the_home_tab_opens_for_the_person_and_shows_waiting_jobs(sandbox: tuple[LocalDeployment, str]) -> None:
    # given
    base = sandbox[1]
    job_id = _create(sandbox)
    # when
    status, _ = _post(f"{base}/home", {"person": "alice"})
    home = _state(base, "alice")["home"]
    # then
    assert status == 200
    assert home is not None
    assert home["type"] == "home"
    assert job_id in json.dumps(home["blocks"])


def test_advance_moves_the_clock(sandbox: tuple[LocalDeployment, str]) -> None:
    # when
    status, advanced = _post(sandbox[1] + "/advance", {"by": "15m"})
    # then
    assert status == 200
    assert advanced["now"] == _state(sandbox[1])["now"]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/click", {"ts": "1.2", "action_id": "approve_job", "person": "eve"}, "unknown person 'eve'"),
        ("/click", {"ts": "1.2", "action_id": "delete_job", "person": "alice"}, "unknown action_id 'delete_job'"),
        ("/click", {"action_id": "approve_job", "person": "alice"}, "'ts' or the 'job_id'"),
        ("/click", {"ts": "1.2", "action_id": "approve_job", "person": "alice"}, "no message 1.2"),
        ("/click", {"job_id": "nope", "action_id": "approve_job", "person": "alice"}, "no approval request"),
        ("/submit", {"person": "alice"}, "'reason' is required"),
        ("/submit", {"person": "gina", "reason": "x"}, "no form is open for gina"),
        ("/create-job", {"objects": "many"}, "'objects' must be a whole number"),
        ("/create-job", {"operation": "delete"}, "unknown operation 'delete'"),
        ("/create-job", {"confirmation": "yes"}, "'confirmation' must be true or false"),
        ("/advance", {"by": "soon"}, "'soon' is not a duration"),
        ("/advance", {}, "'by' is required"),
        ("/home", {"person": ""}, "unknown person"),
        ("/nothing", {}, "no action /nothing"),
        ("/click", ["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_a_bad_body_is_refused_with_400_saying_what_was_wrong(
    sandbox: tuple[LocalDeployment, str], path: str, body: Any, says: str
) -> None:
    # when
    status, answer = _post(sandbox[1] + path, body)
    # then
    assert status == 400
    assert says in answer["error"]


def test_a_body_that_is_not_json_is_refused(sandbox: tuple[LocalDeployment, str]) -> None:
    assert _post(sandbox[1] + "/click", None, raw=b"{not json")[0] == 400
    assert _post(sandbox[1] + "/click", {"person": "alice"}, content_type="text/plain")[0] == 400


def test_state_for_an_unknown_person_or_job_is_a_400(sandbox: tuple[LocalDeployment, str]) -> None:
    assert _get(sandbox[1] + "/state?person=eve")[0] == 400
    assert _get(sandbox[1] + "/state")[0] == 400
    assert _get(sandbox[1] + "/state?person=alice&job=no-such-job")[0] == 400


def test_a_request_from_another_origin_or_host_is_refused(sandbox: tuple[LocalDeployment, str]) -> None:
    # given
    base = sandbox[1]
    request = urllib.request.Request(
        base + "/advance",
        data=b'{"by": "1m"}',
        method="POST",
        headers={"Content-Type": "application/json", "Origin": "http://evil.example"},
    )
    rebound = urllib.request.Request(base + "/state?person=alice", headers={"Host": "evil.example"})
    # then
    for attempt, status in ((request, 403), (rebound, 400)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(attempt, timeout=10)
        assert refused.value.code == status


def test_no_get_changes_anything(sandbox: tuple[LocalDeployment, str]) -> None:
    # given
    d, base = sandbox
    before = (len(d.slack.calls), d.jobs.job_ids(), len(d.slack.views()))
    clock = d.now()
    # when
    for path in ("/click?ts=1&action_id=approve_job&person=alice", "/create-job", "/advance?by=1d", "/home"):
        assert _get(base + path)[0] == 404
    # then
    assert (len(d.slack.calls), d.jobs.job_ids(), len(d.slack.views())) == before
    assert (d.now() - clock).total_seconds() < 60


PEOPLE = {ALICE.id: ALICE.display_name}
GROUPS = {"S0APPROVERS": "approvers"}


@pytest.mark.parametrize(
    ("mrkdwn", "html"),
    [
        ("*bold* _italics_ ~gone~ `code`", "<b>bold</b> <i>italics</i> <s>gone</s> <code>code</code>"),
        ("*_bold italics_*", "<b><i>bold italics</i></b>"),
        ("_*italic bold*_ and *a `code` in bold*", "<i><b>italic bold</b></i> and <b>a <code>code</code> in bold</b>"),
        ("snake_case_name and 2*3*4 and a * b * c", "snake_case_name and 2*3*4 and a * b * c"),
        ("```\n<b>x</b> *not bold*\n```\nafter", '<pre class="code-block">&lt;b&gt;x&lt;/b&gt; *not bold*</pre>after'),
        ("> quoted *line*\n> two\nplain", "<blockquote>quoted <b>line</b><br>two</blockquote>plain"),
        ("&gt; not a quote", "&gt; not a quote"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("<javascript:alert(1)|x>", "&lt;javascript:alert(1)|x&gt;"),
        ("<data:text/html,hi|click>", "&lt;data:text/html,hi|click&gt;"),
        ('<https://ex.com/" onclick="x|y>', "&lt;https://ex.com/&quot; onclick=&quot;x|y&gt;"),
        (
            "<https://example.com/a?b=1&amp;c=2|the docs>",
            '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">the docs</a>',
        ),
        (
            "<http://example.com>",
            '<a href="http://example.com" target="_blank" rel="noopener noreferrer">http://example.com</a>',
        ),
        (
            "*<https://x.test|bold link>*",
            '<b><a href="https://x.test" target="_blank" rel="noopener noreferrer">bold link</a></b>',
        ),
        ("<https://x.test|&lt;img src=x onerror=alert(1)&gt;>", "&lt;img src=x onerror=alert(1)&gt;</a>"),
        ("<@U0ALICE01> approved", '<span class="mention" data-user="U0ALICE01">@Alice A.</span> approved'),
        ("<@U0UNKNOWN>", '<span class="mention" data-user="U0UNKNOWN">@U0UNKNOWN</span>'),
        ("<!subteam^S0APPROVERS>", '<span class="mention group" data-group="S0APPROVERS">@approvers</span>'),
        ("<!subteam^S0OTHER|@data-team>", '<span class="mention group" data-group="S0OTHER">@data-team</span>'),
        ("<!here>", '<span class="mention special">@here</span>'),
        ("Tom &amp; Jerry &amp;lt;b&amp;gt; &quot;", "Tom &amp; Jerry &amp;lt;b&amp;gt; &amp;quot;"),
        ("a\nb", "a<br>b"),
        ("`<b>` and `&lt;i&gt;`", "<code>&lt;b&gt;</code> and <code>&lt;i&gt;</code>"),
        (
            "*Description*\n`Re-tag &lt;b&gt;raw&lt;/b&gt; *events*`",
            "<b>Description</b><br><code>Re-tag &lt;b&gt;raw&lt;/b&gt; *events*</code>",
        ),
        ("\x000\x00 slot", "0 slot"),
    ],
)
def test_mrkdwn_renders_as_slack_shows_it_and_escapes_everything_else(mrkdwn: str, html: str) -> None:
    # when
    rendered = web.mrkdwn_to_html(mrkdwn, people=PEOPLE, groups=GROUPS)
    # then
    assert html in rendered
    assert "<script" not in rendered
    assert "javascript:" not in rendered.split("&lt;")[0]


def test_a_description_full_of_markup_arrives_escaped_in_state(sandbox: tuple[LocalDeployment, str]) -> None:
    # given: a job whose description tries markup, a script, a fake link and a mention
    base = sandbox[1]
    description = '<script>alert(1)</script> *Approved* by <!channel> <javascript:x|click> & <img src=x onerror="y">'
    job_id = _create(sandbox, description=description)
    # when
    request = _request_of(_state(base), job_id)
    # then
    rendered = json.dumps([b for b in request["blocks"]])
    htmls = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if "html" in value:
                htmls.append(value["html"])
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(request["blocks"])
    assert "alert(1)" in rendered
    assert not any("<script" in h or "<img" in h or 'class="mention special"' in h for h in htmls)
    links = [link for h in htmls for link in re.findall(r'<a href="([^"]*)"', h)]
    assert links
    assert all(link.startswith("https://us-east-1.console.aws.amazon.com/s3/jobs/") for link in links)
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in h for h in htmls)


def test_with_html_adds_html_to_every_text_object_and_escapes_plain_text() -> None:
    # given
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "<b>Job</b> *x*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Bucket*\n`a&amp;b`"}]},
    ]
    # when
    shown = web.with_html(blocks, web.mrkdwn_to_html)
    # then
    assert shown[0]["text"]["html"] == "&lt;b&gt;Job&lt;/b&gt; *x*"
    assert shown[1]["fields"][0]["html"] == "<b>Bucket</b><br><code>a&amp;b</code>"
    assert "html" not in blocks[0]["text"]
