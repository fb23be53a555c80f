from pathlib import Path

import pytest
from switchyard_router.callers import CallerConfigError, check_exposure, is_loopback, load_tokens


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("router.example", False),
    ],
)
def test_only_loopback_addresses_count_as_private(host: str, loopback: bool):
    assert is_loopback(host) is loopback


def test_tokens_come_from_the_environment_and_the_file(tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# one a line\ncaller-one\n\n  caller-two  \n")
    environ = {"SWITCHYARD_CALLER_TOKENS": " env-one, ,env-two"}
    assert load_tokens(tokens, environ) == ["env-one", "env-two", "caller-one", "caller-two"]
    assert load_tokens(None, {}) == []


def test_an_unreadable_tokens_file_names_the_flag_and_the_reason(tmp_path: Path):
    with pytest.raises(CallerConfigError, match=r"--caller-tokens-file .*absent: No such file or directory"):
        load_tokens(tmp_path / "absent", {})


def test_a_router_reachable_from_elsewhere_needs_tokens_or_an_explicit_opt_out():
    check_exposure("127.0.0.1", [], allow_unauthenticated=False)
    check_exposure("0.0.0.0", ["caller-one"], allow_unauthenticated=False)
    check_exposure("0.0.0.0", [], allow_unauthenticated=True)
    with pytest.raises(
        CallerConfigError, match=r"--host 0\.0\.0\.0 .* SWITCHYARD_CALLER_TOKENS or --caller-tokens-file"
    ):
        check_exposure("0.0.0.0", [], allow_unauthenticated=False)
