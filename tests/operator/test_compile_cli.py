"""`switchyard compile -f DIR`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from switchyard_operator.compile_cli import main

from .. import console_script
from .manifests import LOOPBACK_ENDPOINTS, policy, provider, secret

ALLOW = [f"--allow-endpoint={e}" for e in LOOPBACK_ENDPOINTS]

ROOT = Path(__file__).resolve().parents[2]
DEMO_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY", "GROQ_API_KEY")


def write(dir_: Path, name: str, *docs) -> None:
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / name).write_text(yaml.safe_dump_all(docs))


def test_samples_compile_and_print_the_configmap(capsys):
    assert main(["-f", str(ROOT / "samples")]) == 0
    out = capsys.readouterr().out
    assert "chat (Priority): openrouter/meta-llama/llama-3.1-70b-instruct -> gemini/gemini-3.1-flash-lite" in out
    docs = [d for d in yaml.safe_load_all(out) if d]
    (cm,) = docs
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "chatbot-routes"
    assert "replace-me" not in out  # placeholder key values never printed


def test_demo_takes_missing_secrets_from_the_environment(tmp_path, monkeypatch, capsys):
    for key in DEMO_KEYS:
        monkeypatch.setenv(key, f"sk-sim-{key.lower()}")
    out_dir = tmp_path / "out"
    assert main(["--allow-endpoint=http://127.0.0.1:9100", "-f", str(ROOT / "samples" / "demo"), "--output-dir", str(out_dir)]) == 0
    table = yaml.safe_load((out_dir / "table.yaml").read_text())
    assert {p["baseURL"] for p in table["providers"]} >= {"http://127.0.0.1:9100/openai/v1", "http://127.0.0.1:9100/gemini"}
    creds = {p.name: p.read_text() for p in (out_dir / "credentials").iterdir()}
    assert creds["openai.primary"] == "sk-sim-openai_api_key"
    assert len(creds) == 5
    assert (out_dir / "credentials" / "groq.primary").stat().st_mode & 0o777 == 0o600
    assert "sk-sim" not in capsys.readouterr().out


def test_env_file_fills_missing_secrets(tmp_path, monkeypatch, capsys):
    for key in DEMO_KEYS:
        monkeypatch.delenv(key, raising=False)
    env = tmp_path / ".env"
    env.write_text("# keys\n" + "\n".join(f"export {k}='sk-{i}'" for i, k in enumerate(DEMO_KEYS)) + "\nJUNK\n")
    assert main(["--allow-endpoint=http://127.0.0.1:9100", "-f", str(ROOT / "samples" / "demo"), "--env-file", str(env), "--policy", "demo"]) == 0


def test_missing_keys_fail_with_resource_field_and_fix(monkeypatch, capsys):
    for key in DEMO_KEYS:
        monkeypatch.delenv(key, raising=False)
    assert main(["--allow-endpoint=http://127.0.0.1:9100", "-f", str(ROOT / "samples" / "demo")]) == 1
    err = capsys.readouterr().err
    assert ("error: LLMProvider demo/openai: spec.credentials[0].secretKeyRef: Secret 'demo-keys' in namespace "
            "'demo' does not exist or has not opted in") in err
    assert "environment variable" in err and "nothing written" in err


def test_missing_grants_are_reported_offline(tmp_path, capsys):
    unlabelled = secret(OPENAI_API_KEY="k", grant=None)
    write(tmp_path / "none", "p.yaml", provider(), unlabelled, policy())
    assert main([*ALLOW, "-f", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "error: LLMProvider team/openai: spec.credentials[0].secretKeyRef: Secret 'keys'" in err
    assert "kubectl -n team label secret keys switchyard.dev/credentials=true --overwrite" in err
    write(tmp_path / "other", "p.yaml", provider(), secret(OPENAI_API_KEY="k", grant="crm"), policy())
    assert main([*ALLOW, "-f", str(tmp_path / "other")]) == 1
    assert "opted in for LLMProviders crm, not 'openai'" in capsys.readouterr().err
    write(tmp_path / "ok", "p.yaml", provider(), secret(OPENAI_API_KEY="k", grant="crm,openai"), policy())
    assert main([*ALLOW, "-f", str(tmp_path / "ok")]) == 0


def test_keys_from_the_environment_warn_that_the_cluster_needs_a_grant(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    write(tmp_path, "p.yaml", provider(), policy())
    assert main([*ALLOW, "-f", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "warning: Secret team/keys is not in" in err
    assert "switchyard.dev/allowed-providers=openai" in err and "sk-env" not in err


def test_invalid_input_is_reported_for_every_resource(tmp_path, capsys):
    bad_provider = provider("broken", timeout="soon")
    write(tmp_path, "all.yaml", provider(), bad_provider, secret(OPENAI_API_KEY="k"),
          policy(targets=[("openai", "m1"), ("ghost", "m")]))
    (tmp_path / "notes.txt").write_text("ignored")
    assert main([*ALLOW, "-f", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "LLMProvider team/broken: spec.timeout:" in err
    assert "RoutingPolicy team/chat: spec.routes[0].targets[1].provider: LLMProvider 'ghost' not found" in err
    assert "2 problem(s)" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [", "not valid YAML"),
        ("- just a list", "not a Kubernetes object"),
        ("apiVersion: v1\nkind: LLMProvider\nmetadata: {name: x}\nspec: {}", "apiVersion must be switchyard.dev/v1alpha1"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}", "no RoutingPolicy found"),
    ],
)
def test_unreadable_input(tmp_path, capsys, content, message):
    (tmp_path / "x.yaml").write_text(content)
    assert main([*ALLOW, "-f", str(tmp_path / "x.yaml")]) == 1
    assert message in capsys.readouterr().err


def test_missing_path_and_policy_selection(tmp_path, capsys):
    assert main([*ALLOW, "-f", str(tmp_path / "nope")]) == 1
    assert "no such file" in capsys.readouterr().err
    write(tmp_path / "two", "p.yaml", provider(), secret(OPENAI_API_KEY="k"), policy("a"), policy("b"))
    assert main([*ALLOW, "-f", str(tmp_path / "two"), "--output-dir", str(tmp_path / "o")]) == 1
    assert "choose one with --policy (a, b)" in capsys.readouterr().err
    assert main([*ALLOW, "-f", str(tmp_path / "two"), "--policy", "c"]) == 1
    assert "named 'c'" in capsys.readouterr().err
    assert main([*ALLOW, "-f", str(tmp_path / "two"), "--policy", "b", "--output-dir", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "credentials" / "openai.primary").read_text() == "k"


def test_help_mentions_environment(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "environment" in capsys.readouterr().out


def test_warnings_go_to_stderr(tmp_path, capsys):
    shutil.rmtree(tmp_path, ignore_errors=True)
    write(tmp_path, "p.yaml", provider(), secret(OPENAI_API_KEY="k"), policy(targets=[("openai", "unlisted")]))
    assert main([*ALLOW, "-f", str(tmp_path)]) == 0
    assert "warning:" in capsys.readouterr().err


def test_switchyard_compile_runs_as_the_readme_runs_it():
    # The console script, as a user types it: its exit code, its stdout, nothing in-process.
    done = subprocess.run([console_script("switchyard"), "compile", "-f", str(ROOT / "samples")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    (cm,) = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "chatbot-routes"
    assert "replace-me" not in done.stdout
