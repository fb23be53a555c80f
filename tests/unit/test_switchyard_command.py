import pytest
from switchyard_cli import main


@pytest.mark.parametrize(("argv", "status"), [([], 2), (["--help"], 0), (["-h"], 0), (["deploy"], 2)])
def test_usage_lists_every_subcommand(argv: list[str], status: int, capsys: pytest.CaptureFixture[str]):
    assert main(argv) == status
    out = capsys.readouterr().out
    assert out.startswith("usage: switchyard {demo,sim,compile,report} [options]")
    assert "  report    compare providers" in out


def test_a_subcommand_gets_the_rest_of_the_arguments(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as stop:
        main(["sim", "--help"])
    assert stop.value.code == 0
    assert "--port" in capsys.readouterr().out


def test_a_bad_log_format_from_the_environment_stops_start_up(monkeypatch, capsys):
    from switchyard_router.cli import parse_args

    monkeypatch.setenv("SWITCHYARD_LOG_FORMAT", "yaml")
    with pytest.raises(SystemExit):
        parse_args([])
    assert "SWITCHYARD_LOG_FORMAT='yaml' is invalid: expected text or json" in capsys.readouterr().err
    monkeypatch.setenv("SWITCHYARD_LOG_FORMAT", "json")
    assert parse_args([]).log_format == "json"
