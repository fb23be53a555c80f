import pytest
from switchyard_router.breaker import BreakerState, CircuitBreaker
from switchyard_router.limits import Quota, TokenBucket, exhausted_for, parse_reset
from switchyard_router.table import CircuitBreakerPolicy


def breaker(**policy) -> CircuitBreaker:
    return CircuitBreaker(CircuitBreakerPolicy(**policy))


def test_opens_after_consecutive_failures_and_half_opens_after_cooldown():
    b = breaker(consecutive_failures=3, cooldown=10)
    for t in range(2):
        b.failure(t)
    assert b.state is BreakerState.CLOSED and b.available(2)
    b.failure(2)
    assert b.state is BreakerState.OPEN
    assert not b.available(5) and not b.acquire(5)
    assert b.available(12)
    assert b.acquire(12) and b.state is BreakerState.HALF_OPEN
    assert not b.available(12) and not b.acquire(12)  # one trial only
    b.success(12.5)
    assert b.state is BreakerState.CLOSED and b.acquire(13)


def test_a_failed_trial_opens_again_and_a_released_trial_frees_the_slot():
    b = breaker(consecutive_failures=1, cooldown=5)
    b.failure(0)
    assert b.acquire(6)
    b.release()
    assert b.available(6) and b.acquire(6)
    b.failure(6)
    assert b.state is BreakerState.OPEN and b.open_until == 11


def test_a_success_resets_the_consecutive_count():
    b = breaker(consecutive_failures=2, minimum_requests=100)
    b.failure(0)
    b.success(0.1)
    b.failure(0.2)
    assert b.state is BreakerState.CLOSED


def test_failure_rate_over_the_window_opens():
    b = breaker(consecutive_failures=100, failure_rate_percent=50, minimum_requests=10, window=10)
    for i in range(10):
        (b.failure if i % 2 else b.success)(i * 0.1)
    assert b.state is BreakerState.OPEN


def test_old_failures_slide_out_of_the_window():
    b = breaker(consecutive_failures=100, failure_rate_percent=50, minimum_requests=4, window=10)
    b.failure(0)
    b.failure(0.5)
    b.success(0.6)  # consecutive resets; rate 2/3 but below minimum requests
    for t in (20, 20.1, 20.2, 20.3):
        b.success(t)
    b.failure(20.4)
    assert b.state is BreakerState.CLOSED  # the early failures fell out of the window


def test_trip_extends_but_never_shortens():
    b = breaker()
    b.trip(10)
    b.trip(5)
    assert b.open_until == 10
    b.trip(20)
    assert b.open_until == 20


def test_zero_width_window_still_records():
    b = breaker(window=0, minimum_requests=1, failure_rate_percent=100, consecutive_failures=50)
    b.failure(1)
    assert b.state is BreakerState.OPEN


def test_token_bucket_refills_over_time_and_allows_debt():
    bucket = TokenBucket(60, now=0)  # one per second
    for _ in range(60):
        assert bucket.has(1, 0)
        bucket.take(1, 0)
    assert not bucket.has(1, 0)
    assert bucket.has(1, 1.0)
    bucket.take(10, 1.0)  # more than was left: debt
    assert not bucket.has(1, 5.0)
    assert not bucket.has(1, 9.9)
    assert bucket.has(1, 11.0)
    assert bucket.has(1000, 200)  # a request bigger than the bucket goes when it is full


def test_quota_combines_requests_and_tokens():
    quota = Quota(requests_per_minute=2, tokens_per_minute=1000, now=0)
    assert quota.allows(500, 0)
    quota.take(500, 0)
    quota.charge(400, 0)
    assert not quota.allows(500, 0)  # 100 tokens left
    assert quota.allows(100, 0)
    quota.take(100, 0)
    assert not quota.allows(1, 0)  # both requests used
    only_tokens = Quota(None, 10, now=0)
    only_tokens.charge(0, 0)
    assert only_tokens.allows(10, 0)
    only_requests = Quota(1, None, now=0)
    only_requests.charge(5, 0)
    assert only_requests.allows(10**6, 0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("12", 12.0), ("-1", 0.0)],
)
def test_reset_durations(value, seconds):
    assert parse_reset(value, wall_now=0) == pytest.approx(seconds)


def test_reset_timestamps_and_garbage():
    assert parse_reset("1970-01-01T00:01:40Z", wall_now=40) == pytest.approx(60)
    assert parse_reset("tomorrow", wall_now=0) is None
    assert parse_reset("5x", wall_now=0) is None


def test_exhausted_headers_give_the_longest_wait():
    headers = {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert exhausted_for(headers, 0) == 360.0
    assert exhausted_for({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1s"}, 0) is None
    assert exhausted_for({"anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": "junk"}, 0) is None
    anthropic = {"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": "1970-01-01T00:00:30Z"}
    assert exhausted_for(anthropic, 0) == pytest.approx(30)
