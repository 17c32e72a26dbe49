"""Retry classification table, back-off bounds, Retry-After parsing and the shared retry budget."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from api_client.errors import (
    AuthError,
    InvalidRequest,
    LocalValidationError,
    NoFaceDetected,
    PollDeadlineExceeded,
    PortraitAPIError,
    RiskRejected,
    RiskStage,
    SubmitOutcomeUnknown,
    TaskNotFound,
    TransportError,
    error_from_response,
    error_from_transport,
)
from api_client.retry import (
    RETRY_AFTER_LIMIT,
    RetryBudget,
    RetryKind,
    RetryPolicy,
    classify,
    parse_retry_after,
    retry_after_of,
)

N, T, TH = RetryKind.NEVER, RetryKind.TRANSIENT, RetryKind.THROTTLED


def _api(status: int, code: int | None) -> PortraitAPIError:
    return error_from_response(status, {"code": code, "message": "m"} if code is not None else b"")


# (label, error, kind when resend_safe (poll), kind when not (submit))
TABLE: list[tuple[str, BaseException, RetryKind, RetryKind]] = [
    ("50429", _api(429, 50429), TH, TH),
    ("50430", _api(429, 50430), TH, TH),
    ("100018", _api(429, 100018), TH, TH),
    ("http429-no-code", _api(429, None), TH, TH),
    ("50500", _api(500, 50500), T, N),
    ("50501", _api(500, 50501), T, N),
    ("50520", _api(400, 50520), T, N),
    ("50521", _api(400, 50521), T, N),
    ("50522", _api(400, 50522), T, N),
    ("http502-html", _api(502, None), T, N),
    ("http503", _api(503, None), T, N),
    ("connect-error", error_from_transport(httpx.ConnectError("refused")), T, T),
    ("connect-timeout", error_from_transport(httpx.ConnectTimeout("t")), T, T),
    ("pool-timeout", error_from_transport(httpx.PoolTimeout("t")), T, T),
    ("read-timeout", error_from_transport(httpx.ReadTimeout("t")), T, N),
    ("remote-disconnect", error_from_transport(httpx.RemoteProtocolError("gone")), T, N),
    ("outcome-unknown", SubmitOutcomeUnknown(), N, N),
    ("50200", _api(400, 50200), N, N),
    ("50402", _api(404, 50402), N, N),
    ("60102", _api(400, 60102), N, N),
    ("50411", _api(400, 50411), N, N),
    ("50511", _api(400, 50511), N, N),
    ("50519", _api(400, 50519), N, N),
    ("50400", _api(401, 50400), N, N),
    ("100010", _api(401, 100010), N, N),
    ("http403", _api(403, None), N, N),
    ("local-validation", LocalValidationError(rule="width_range"), N, N),
    ("no-face", NoFaceDetected(), N, N),
    ("risk", RiskRejected(stage=RiskStage.INPUT_TEXT), N, N),
    ("auth", AuthError("missing credentials"), N, N),
    ("invalid", InvalidRequest(), N, N),
    ("task-not-found", TaskNotFound(), N, N),
    ("poll-deadline", PollDeadlineExceeded(), N, N),
    ("plain-exception", ValueError("bug"), N, N),
]


@pytest.mark.parametrize(("label", "error", "poll_kind", "submit_kind"), TABLE, ids=[r[0] for r in TABLE])
def test_classification_table(
    label: str, error: BaseException, poll_kind: RetryKind, submit_kind: RetryKind
) -> None:
    assert classify(error, resend_safe=True) is poll_kind
    assert classify(error, resend_safe=False) is submit_kind


def test_a_submit_is_never_resent_unless_surely_refused_or_never_sent() -> None:
    for _, error, _, submit_kind in TABLE:
        if submit_kind is not RetryKind.NEVER:
            surely_refused = classify(error, resend_safe=False) is RetryKind.THROTTLED
            never_sent = isinstance(error, TransportError) and error.connect_phase
            assert surely_refused or never_sent


@pytest.mark.parametrize("kind", [T, TH])
@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 8, 30, 1000])
def test_delay_is_full_jitter_within_the_capped_exponential(kind: RetryKind, attempt: int) -> None:
    policy = RetryPolicy(base=0.5, throttled_base=1.0, cap=20.0, rng=random.Random(attempt))
    base = 1.0 if kind is TH else 0.5
    ceiling = min(20.0, base * 2 ** (attempt - 1))
    assert policy.ceiling(attempt, kind) == ceiling
    samples = [policy.delay(attempt, kind, None) for _ in range(400)]
    assert all(0.0 <= s <= ceiling for s in samples)
    # full jitter spreads over the whole range, not a narrow band near the ceiling
    assert min(samples) < 0.1 * ceiling and max(samples) > 0.9 * ceiling


def test_throttled_waits_longer_than_transient_on_average() -> None:
    policy = RetryPolicy(rng=random.Random(7))
    transient = sum(policy.delay(2, T) for _ in range(2000)) / 2000
    throttled = sum(policy.delay(2, TH) for _ in range(2000)) / 2000
    assert throttled > 1.5 * transient


@pytest.mark.parametrize("retry_after", [0.0, 0.25, 3.0, 20.0, 45.0, RETRY_AFTER_LIMIT])
def test_bounded_retry_after_is_honoured(retry_after: float) -> None:
    policy = RetryPolicy(rng=random.Random(1))
    assert policy.delay(1, TH, retry_after) == retry_after
    assert policy.delay(3, T, retry_after) == retry_after


@pytest.mark.parametrize("retry_after", [60.001, 120.0, 3600.0, -1.0])
def test_unbounded_or_negative_retry_after_is_ignored(retry_after: float) -> None:
    policy = RetryPolicy(cap=20.0, rng=random.Random(2))
    delays = [policy.delay(2, TH, retry_after) for _ in range(100)]
    assert all(0.0 <= d <= policy.ceiling(2, TH) for d in delays)
    assert len(set(delays)) > 1, "our own jittered back-off is used instead"


def test_never_has_no_delay() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().delay(1, N)


def test_should_retry_counts_the_first_attempt() -> None:
    policy = RetryPolicy(max_attempts=4)
    assert [policy.should_retry(a, T) for a in (1, 2, 3, 4, 5)] == [True, True, True, False, False]
    assert not policy.should_retry(1, N)
    assert not RetryPolicy(max_attempts=1).should_retry(1, TH)


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base": -1.0}, {"throttled_base": -0.1}, {"cap": -5.0}]
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


NOW = 1_704_067_200.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"Retry-After-Ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": format_datetime(datetime.fromtimestamp(NOW + 30, tz=UTC), usegmt=True)}, 30.0),
        ({"Retry-After": format_datetime(datetime.fromtimestamp(NOW - 30, tz=UTC), usegmt=True)}, 0.0),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"retry-after-ms": "x"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers), now=NOW) == expected


def test_retry_after_travels_on_the_error() -> None:
    error = error_from_response(429, {"code": 50429}, retry_after=4.0)
    assert retry_after_of(error) == 4.0
    assert retry_after_of(error_from_response(400, {"code": 50200})) is None


def test_budget_drains_on_retries_and_fails_fast_when_empty() -> None:
    budget = RetryBudget(capacity=20, retry_cost=5, transport_cost=10)
    server = error_from_response(500, {"code": 50500})
    assert budget.spend(server) == 5
    assert budget.spend(error_from_transport(httpx.ConnectError("x"))) == 10
    assert budget.available == 5
    assert budget.spend(server) == 5
    assert budget.spend(server) is None, "empty: no retry, nothing taken"
    assert budget.available == 0


def test_budget_refunds_successes_but_never_above_capacity() -> None:
    budget = RetryBudget(capacity=20, retry_cost=5, success_refund=1)
    server = error_from_response(503, b"")
    spent = (budget.spend(server) or 0) + (budget.spend(server) or 0)
    assert budget.available == 10
    budget.succeed(spent)  # the retried call finally worked: its retries are refunded
    assert budget.available == 20
    budget.succeed()  # a first-try success adds the small bonus, capped
    assert budget.available == 20
    assert budget.spend(server) == 5
    budget.succeed()
    assert budget.available == 16


def test_budget_recovers_after_an_outage_through_first_try_successes() -> None:
    budget = RetryBudget(capacity=10, retry_cost=5, success_refund=1)
    error = error_from_response(500, {"code": 50501})
    while budget.spend(error) is not None:
        pass
    assert budget.spend(error) is None
    for _ in range(5):
        budget.succeed()
    assert budget.spend(error) == 5
