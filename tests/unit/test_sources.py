from pathlib import Path

import pytest
import yaml
from switchyard_router.credentials import CredentialStore
from switchyard_router.reload import files_signature
from switchyard_router.sources import Sources, read_table_file
from switchyard_router.table import TableError

TABLE = {
    "providers": [{"name": "oa", "type": "openai", "credentials": [{"name": "main", "key": "oa.main"}]}],
    "routes": [{"name": "chat", "targets": [{"provider": "oa", "model": "m"}]}],
}


def test_yaml_table_with_a_kubelet_style_credentials_dir(tmp_path: Path):
    config = tmp_path / "table.yaml"
    config.write_text(yaml.safe_dump(TABLE))
    creds = tmp_path / "creds"
    (creds / "..2026_11_26").mkdir(parents=True)
    (creds / "oa.main").write_text("sk-from-file-0001\n")
    (creds / "..data").symlink_to(creds / "..2026_11_26")
    (creds / "empty").write_text("")
    table, store = Sources(config, None, creds).load()
    assert table.routes[0].name == "chat"
    assert store.get("oa.main") == "sk-from-file-0001"
    assert store.get("empty") is None
    assert "sk-from-file" not in repr(store)


def test_env_file_fills_in_and_the_environment_wins(tmp_path: Path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("PRIMARY_PROVIDER=groq\nGROQ_API_KEY=gsk-file-key\nGROQ_MODEL=from-file\nEMPTY\n")
    monkeypatch.setenv("GROQ_MODEL", "from-env")
    table, store = Sources(None, env_file, None).load()
    assert table.routes[0].targets[0].model == "from-env"
    assert store.get("GROQ_API_KEY") == "gsk-file-key"


def test_a_missing_env_file_is_ignored(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PRIMARY_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    table, _ = Sources(None, tmp_path / "absent", None).load()
    assert table.providers[0].name == "openai"


def test_the_operators_configmap_is_accepted_as_is(tmp_path: Path):
    config = tmp_path / "cm.yaml"
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"table.yaml": yaml.safe_dump(TABLE)}}
    config.write_text(yaml.safe_dump(configmap))
    assert read_table_file(config).providers[0].name == "oa"


def test_unreadable_and_invalid_files_say_what_is_wrong(tmp_path: Path):
    with pytest.raises(TableError, match="cannot read routing table"):
        read_table_file(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("routes: [\n")
    with pytest.raises(TableError, match="not valid YAML"):
        read_table_file(broken)
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(yaml.safe_dump({"routes": [{"name": "chat", "targets": []}]}))
    with pytest.raises(TableError, match=r"routes\[0\].targets"):
        read_table_file(invalid)


def test_store_from_mapping_only():
    store = CredentialStore.load(None, {"A": "1", "B": ""})
    assert store.get("A") == "1" and store.get("B") is None


def test_the_files_signature_changes_with_every_source_file(tmp_path: Path):
    config = tmp_path / "table.yaml"
    config.write_text(yaml.safe_dump(TABLE))
    env_file = tmp_path / ".env"
    env_file.write_text("PROVIDER_TIMEOUT=5\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "oa.main").write_text("sk-one")
    sources = Sources(config, env_file, creds)
    seen = files_signature(sources)
    env_file.write_text("PROVIDER_TIMEOUT=30\n")
    assert files_signature(sources) != seen
    env_file.unlink()
    assert files_signature(sources)[-1] is None  # a file gone is a state to notice, not an error


def test_following_a_policy_keys_come_from_its_credentials_never_the_environment(tmp_path: Path, monkeypatch):
    # A table that names a variable of the router (a proxy password, say) as a key gets nothing
    # when the router follows a policy; standalone, naming a variable is how keys are given.
    table = {
        "providers": [{"name": "oa", "type": "openai", "credentials": [
            {"name": "main", "key": "oa.main"}, {"name": "stolen", "key": "PROXY_PASSWORD"}]}],
        "routes": [{"name": "chat", "targets": [{"provider": "oa", "model": "m"}]}],
    }
    config = tmp_path / "table.yaml"
    config.write_text(yaml.safe_dump(table))
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "oa.main").write_text("sk-policy-key")
    monkeypatch.setenv("PROXY_PASSWORD", "hunter2-proxy")
    _, policy_store = Sources(config, None, creds, keys_from_env=False).load()
    assert policy_store.get("oa.main") == "sk-policy-key"
    assert policy_store.get("PROXY_PASSWORD") is None
    _, standalone = Sources(config, None, creds).load()
    assert standalone.get("PROXY_PASSWORD") == "hunter2-proxy"
