"""A burst of jobs suspended at once: every request posted once, at Slack's pace, nothing dead-lettered.

The Slack stand-in enforces chat.postMessage's per-channel limit as Slack does (HTTP 429 with Retry-After
beyond about one message a second and a short burst), on a time scale that keeps the test short; the
product's posting interval follows the same scale. bench/burst.py measures the drain time; that the same
posts unpaced do meet 429s is tests/unit/test_pacing.py's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from sandbox.local import CHANNEL, LocalDeployment, requests_posted

pytestmark = pytest.mark.slow

JOBS = 30
SCALE = 0.02  # one Slack second lasts 20 ms


@pytest.fixture
def d() -> Iterator[LocalDeployment]:
    with LocalDeployment(slack_time_scale=SCALE) as running:
        yield running


def _burst(d: LocalDeployment, jobs: int = JOBS) -> list[str]:
    job_ids = [d.create_job(description=f"burst {n}") for n in range(jobs)]
    d.settle()
    for job_id in job_ids:
        d.jobs.advance_until(job_id, "Suspended")
    d.settle(timeout=120)
    return job_ids


def test_a_burst_of_suspended_jobs_is_posted_once_each_within_slack_s_pace(d: LocalDeployment) -> None:
    # when
    job_ids = _burst(d)

    # then: each job's request once, nothing lost or dead-lettered, and Slack never had to say 429
    assert requests_posted(d.slack) == Counter(dict.fromkeys(job_ids, 1))
    assert d.notifier_failures == []
    assert d.event_dlq == []
    assert d.slack.rate_limited(CHANNEL) == 0
    assert len(d.slack.post_times(CHANNEL)) == JOBS
