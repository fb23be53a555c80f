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


ONE, TWO = "caller-one-" + "1" * 22, "caller-two-" + "2" * 22
ENV_ONE, ENV_TWO = "env-one-" + "3" * 24, "env-two-" + "4" * 24


def test_tokens_come_from_the_environment_and_the_file(tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# one a line\n{ONE}\n\n  {TWO}  \n")
    environ = {"SWITCHYARD_CALLER_TOKENS": f" {ENV_ONE}, ,{ENV_TWO}"}
    assert load_tokens(tokens, environ) == [ENV_ONE, ENV_TWO, ONE, TWO]
    assert load_tokens(None, {}) == []


@pytest.mark.parametrize(
    ("file", "env", "where"),
    [
        ("", f"{ENV_ONE},zq9", "SWITCHYARD_CALLER_TOKENS entry 2"),
        (f"{ONE}\n# note\nzq9\n", "", "--caller-tokens-file {path} line 3"),
        (f"{ONE} {TWO}\n", "", "--caller-tokens-file {path} line 1"),
    ],
)
def test_a_short_or_spaced_token_is_refused_at_start_without_being_shown(tmp_path: Path, file, env, where):
    tokens = tmp_path / "tokens"
    tokens.write_text(file)
    with pytest.raises(CallerConfigError) as caught:
        load_tokens(tokens, {"SWITCHYARD_CALLER_TOKENS": env})
    message = str(caught.value)
    assert message.startswith(where.format(path=tokens) + ": a caller token is one word of at least 32 characters")
    assert "zq9" not in message and ONE not in message


def test_an_unreadable_tokens_file_names_the_flag_and_the_reason(tmp_path: Path):
    with pytest.raises(CallerConfigError, match=r"--caller-tokens-file .*absent: No such file or directory"):
        load_tokens(tmp_path / "absent", {})


def test_a_router_reachable_from_elsewhere_needs_tokens_or_an_explicit_opt_out():
    check_exposure("127.0.0.1", [], allow_unauthenticated=False)
    check_exposure("0.0.0.0", [ONE], allow_unauthenticated=False)
    check_exposure("0.0.0.0", [], allow_unauthenticated=True)
    with pytest.raises(
        CallerConfigError, match=r"--host 0\.0\.0\.0 .* SWITCHYARD_CALLER_TOKENS or --caller-tokens-file"
    ):
        check_exposure("0.0.0.0", [], allow_unauthenticated=False)
