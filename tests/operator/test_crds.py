"""The committed CRDs are what the models generate, structural, documented, and the samples pass them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from switchyard_operator import crdgen
from switchyard_operator.compile import parse_spec
from switchyard_operator.models import LLMProviderSpec, RoutingPolicySpec

from .manifests import policy, provider
from .schema_check import admission_errors, crd_schemas

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples").rglob("*.yaml"))


def test_committed_crds_match_the_models():
    assert crdgen.main(["--check", "--output-dir", str(ROOT / "crds")]) == 0, (
        "crds/ is stale: run python -m switchyard_operator.crdgen"
    )


def test_crdgen_writes_and_detects_drift(tmp_path, capsys):
    assert crdgen.main(["--check", "--output-dir", str(tmp_path)]) == 1
    assert crdgen.main(["--output-dir", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--output-dir", str(tmp_path)]) == 0
    (tmp_path / "switchyard.dev_llmproviders.yaml").write_text("edited")
    assert crdgen.main(["--check", "--output-dir", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err


def _walk(node: dict[str, Any], path: str):
    yield path, node
    for name, prop in node.get("properties", {}).items():
        yield from _walk(prop, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", ["LLMProvider", "RoutingPolicy"])
def test_schemas_are_structural_and_described(kind):
    schema = crd_schemas()[kind]
    for part in ("spec", "status"):
        for path, node in _walk(schema["properties"][part], part):
            assert "type" in node, f"{path} has no type"
            for key in ("$ref", "anyOf", "allOf", "oneOf", "title", "uniqueItems"):
                assert key not in node, f"{path} has {key}"
            assert node.get("additionalProperties") is not False, path
            if not path.endswith("[]") and not path.endswith("{}"):
                assert node.get("description"), f"{path} has no description (kubectl explain)"
            assert node["type"] != "number", f"{path}: no floats in the API"


def test_crd_names_columns_and_status():
    docs = {}
    for text in crdgen.generate().values():
        for doc in yaml.safe_load_all(text):
            docs[doc["spec"]["names"]["kind"]] = doc
    prov = docs["LLMProvider"]["spec"]
    assert prov["names"]["shortNames"][0] == "llmp"
    assert prov["names"]["categories"] == ["switchyard"]
    assert docs["RoutingPolicy"]["spec"]["names"]["shortNames"] == ["rpol"]
    version = prov["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Type", "Ready", "Health", "Latency", "Spend", "Age"
    ]
    assert {"ClusterKopfPeering", "KopfPeering"} <= set(docs)


def _documents(path: Path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_samples_pass_schema_and_cel(path):
    for doc in _documents(path):
        if doc["kind"] in ("LLMProvider", "RoutingPolicy"):
            assert admission_errors(doc) == [], doc["metadata"]["name"]
            model = LLMProviderSpec if doc["kind"] == "LLMProvider" else RoutingPolicySpec
            assert parse_spec(model, doc, doc["kind"])[1] == []


def _weighted_on_priority():
    body = policy(targets=[("a", "x"), ("b", "y")])
    body["spec"]["routes"][0]["targets"][0]["weight"] = 3
    return body


def _duplicate_route():
    body = policy()
    body["spec"]["routes"].append(copy.deepcopy(body["spec"]["routes"][0]))
    return body


def _duplicate_credential():
    body = provider()
    body["spec"]["credentials"].append(copy.deepcopy(body["spec"]["credentials"][0]))
    return body


INVALID = {
    "weight without Weighted": (_weighted_on_priority, "weight is only allowed"),
    "duplicate target": (lambda: policy(targets=[("a", "x"), ("a", "x")]), "only once"),
    "duplicate route": (_duplicate_route, "unique"),
    "duplicate credential": (_duplicate_credential, "unique"),
    "compatible without baseURL": (lambda: provider(type_="openai-compatible", baseURL=None), "baseURL"),
    "completion probe without model": (
        lambda: provider(healthCheck={"mode": "Completion"}), "healthCheck.model"),
    "auth header": (lambda: provider(headers={"Authorization": "Bearer x"}), "credential"),
    "prompt cache off anthropic": (lambda: provider(promptCache="5m"), "promptCache applies to type anthropic"),
    "bad prompt cache": (lambda: provider(type_="anthropic", promptCache="1d"), ""),
    "float money": (lambda: provider(
        models=[{"name": "m", "pricing": {"inputPerMillionTokens": 0.5, "outputPerMillionTokens": "1"}}]), ""),
    "bad duration": (lambda: provider(timeout="30 seconds"), ""),
    "bad strategy": (lambda: policy(strategy="Fastest"), ""),
    "bad fallback kind": (lambda: policy(fallbackOn=["Teapot"]), ""),
    "unknown field": (lambda: provider(tiemout="3s"), ""),
    # A baseURL that would retarget the probe's path, or carry credentials in the URL.
    "baseURL query": (lambda: provider(baseURL="https://api.openai.com/v1?x="), "must not carry a query"),
    "baseURL fragment": (lambda: provider(baseURL="https://api.openai.com/v1#"), "must not carry a query"),
    "baseURL userinfo": (lambda: provider(baseURL="https://u:p@api.openai.com/v1"), "user:password@"),
}


@pytest.mark.parametrize("name", INVALID)
def test_invalid_manifests_are_refused_by_the_api_and_by_compile(name):
    build, words = INVALID[name]
    body = build()
    api = admission_errors(body)
    if name == "unknown field":
        api = ["pruned by the API server"]  # structural pruning drops it; compile refuses it
    assert api, f"the API server would accept: {name}"
    assert words in " ".join(api)
    model = LLMProviderSpec if body["kind"] == "LLMProvider" else RoutingPolicySpec
    spec, problems = parse_spec(model, body, body["kind"])
    assert spec is None and problems, f"compile would accept: {name}"
    assert all(p.reason == "InvalidSpec" and p.field.startswith("spec") for p in problems)
