import logging

import orjson
import pytest
from switchyard_router.adapters.base import error_status, upstream_request_id
from switchyard_router.backoff import retry_delay
from switchyard_router.errors import (
    ErrorKind,
    UpstreamError,
    kind_from_status,
    parse_retry_after,
    redirect_error,
)
from switchyard_router.redact import RedactingFilter, Redactor
from switchyard_router.table import Backoff


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, ErrorKind.RATE_LIMITED),
        (401, ErrorKind.UNAUTHORIZED),
        (403, ErrorKind.UNAUTHORIZED),
        (408, ErrorKind.TIMEOUT),
        (504, ErrorKind.TIMEOUT),
        (503, ErrorKind.OVERLOADED),
        (529, ErrorKind.OVERLOADED),
        (413, ErrorKind.CONTEXT_LENGTH_EXCEEDED),
        (400, ErrorKind.BAD_REQUEST),
        (404, ErrorKind.BAD_REQUEST),
        (500, ErrorKind.SERVER_ERROR),
        (502, ErrorKind.SERVER_ERROR),
        (301, ErrorKind.REDIRECTED),
        (307, ErrorKind.REDIRECTED),
    ],
)
def test_status_classification(status, kind):
    assert kind_from_status(status) is kind


def test_retry_after_forms():
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("not a date") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_client_facing_errors_use_openai_shape():
    bad = UpstreamError(ErrorKind.BAD_REQUEST, "max_tokens is too large", status=422)
    assert bad.client_status() == 422
    assert orjson.loads(bad.client_body())["error"] == {
        "message": "max_tokens is too large",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert UpstreamError(ErrorKind.OVERLOADED, "busy").client_status() == 503
    assert UpstreamError(ErrorKind.BAD_REQUEST, "no status").client_status() == 400
    ctx = orjson.loads(UpstreamError(ErrorKind.CONTEXT_LENGTH_EXCEEDED, "long").client_body())
    assert ctx["error"]["code"] == "context_length_exceeded"
    filtered = orjson.loads(UpstreamError(ErrorKind.CONTENT_FILTERED, "no").client_body())
    assert filtered["error"]["code"] == "content_filter"
    coded = orjson.loads(UpstreamError(ErrorKind.RATE_LIMITED, "q", code="insufficient_quota").client_body())
    assert coded["error"]["code"] == "insufficient_quota"


def test_backoff_is_full_jitter_within_the_exponential_cap(monkeypatch):
    policy = Backoff(base=0.2, max=1.0)
    seen = []
    monkeypatch.setattr(
        "switchyard_router.backoff.random.uniform", lambda lo, hi: seen.append((lo, hi)) or hi
    )
    assert retry_delay(policy, 0, None) == 0.2
    assert retry_delay(policy, 2, None) == 0.8
    assert retry_delay(policy, 5, None) == 1.0  # capped
    assert seen[0] == (0, 0.2)


def test_retry_after_is_a_floor():
    assert retry_delay(Backoff(base=0.1, max=0.2), 0, 3.0) == 3.0


def test_redactor_scrubs_known_keys_and_key_shapes():
    redact = Redactor(["my-secret-key-123", "short"])
    text = "key my-secret-key-123 and sk-proj-ABCDEFGHIJKL and AIzaSyA1234567890abcdefghijk, short"
    out = redact(text)
    assert "my-secret-key-123" not in out
    assert "sk-proj-ABCDEFGHIJKL" not in out
    assert "AIzaSy" not in out
    assert out.endswith("short")  # too short to be a key: left alone


def test_logging_filter_scrubs_records(caplog):
    logger = logging.getLogger("test.redact")
    handler_filter = RedactingFilter(Redactor(["top-secret-value"]))
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="test.redact"):
            logger.info("failed with %s", "top-secret-value")
            logger.info("nothing to hide")
    finally:
        logger.removeFilter(handler_filter)
    assert "top-secret-value" not in caplog.text
    assert "[REDACTED]" in caplog.text
    assert "nothing to hide" in caplog.text


@pytest.mark.parametrize(
    ("kind", "retry_after", "expected"),
    [
        (ErrorKind.RATE_LIMITED, 6.2, {"Retry-After": "7", "retry-after-ms": "6200"}),
        (ErrorKind.OVERLOADED, 0.0, {"Retry-After": "1", "retry-after-ms": "1"}),  # never "wait 0"
        (ErrorKind.RATE_LIMITED, None, {}),
        (ErrorKind.SERVER_ERROR, 5.0, {}),  # waiting is no cure for a 502
    ],
)
def test_a_client_is_told_how_long_to_wait_only_when_waiting_helps(kind, retry_after, expected):
    assert UpstreamError(kind, "m", retry_after=retry_after).client_headers() == expected


def test_the_providers_request_id_goes_with_any_error():
    err = UpstreamError(ErrorKind.BAD_REQUEST, "m", status=400, request_id="req_1")
    assert err.client_headers() == {"x-request-id": "req_1"}


@pytest.mark.parametrize(
    ("location", "where"),
    [
        ("https://Evil.example:8443/x?key=sk-secret-123456789", "host evil.example"),
        ("/v2/chat", "the same host"),
        (None, "the same host"),
        ("http://[::1", "an unreadable place"),
        ("http://ev il\r\n.example/", "an unreadable place"),
    ],
)
def test_a_redirect_names_only_the_host_it_points_to(location, where):
    err = redirect_error("up", 302, location)
    assert err.kind is ErrorKind.REDIRECTED and err.status == 302
    assert err.message == f"up answered HTTP 302, a redirect to {where}: redirects are not followed; check the provider's baseURL"
    assert err.client_status() == 502


def test_request_ids_pass_only_when_they_look_like_one():
    assert upstream_request_id({"x-request-id": "req_01H:abc/1+2=3.4-5"}) == "req_01H:abc/1+2=3.4-5"
    assert upstream_request_id({"request-id": "req_1"}) == "req_1"
    assert upstream_request_id({"x-request-id": "a b"}) is None
    assert upstream_request_id({"x-request-id": "x" * 129}) is None
    assert upstream_request_id({}) is None
    redactor = Redactor(["sk-known-key-value"])
    assert redactor.header("id-sk-known-key-value") == "id-[REDACTED]"
    assert redactor.header(None) is None


@pytest.mark.parametrize(
    ("detail", "status"),
    [
        ({"code": 429, "message": "x"}, 429),
        ({"code": True, "type": "rate_limit_error"}, 429),
        ({"code": 200, "status": "UNAVAILABLE"}, 503),
        ({"type": "authentication_error"}, 401),
        ({"code": "insufficient_quota"}, 429),
        ({"type": "something_new"}, 500),
        ("a string", 500),
        (None, 500),
    ],
)
def test_an_error_object_in_a_200_stands_for_a_status(detail, status):
    assert error_status(detail) == status
