"""docs/fields.md: generated from the CRDs, complete, and current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from switchyard_operator import docgen

ROOT = Path(__file__).resolve().parents[2]


def leaf_paths(node: dict[str, Any], path: str) -> set[str]:
    out = {path}
    for name, child in (node.get("properties") or {}).items():
        out |= leaf_paths(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        out |= {p for p in leaf_paths(node["items"], f"{path}[]") if p != f"{path}[]"}
    return out


def test_committed_reference_is_current() -> None:
    assert docgen.main(["--check"]) == 0, "run: python -m switchyard_operator.docgen"


def test_every_field_is_documented() -> None:
    text = (ROOT / "docs" / "fields.md").read_text()
    for crd in docgen.load_crds(ROOT / "crds"):
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert f"## {crd['spec']['names']['kind']} (switchyard.dev/" in text
        for section in ("spec", "status"):
            for path in leaf_paths(schema["properties"][section], section) - {section}:
                assert f"| `{path}` |" in text, path


def test_rows_carry_type_default_enum_range_and_rules() -> None:
    crd = next(c for c in docgen.load_crds(ROOT / "crds") if c["spec"]["names"]["kind"] == "LLMProvider")
    text = "\n".join(docgen.render_crd(crd))
    row = next(line for line in text.splitlines() if line.startswith("| `spec.budget.onExceeded` |"))
    assert "| string |" in row and "`Alert`" in row and "one of `Disable`, `Alert`" in row
    row = next(line for line in text.splitlines() if line.startswith("| `spec.budget.warnAtPercent` |"))
    assert "| integer |" in row and "`80`" in row and "range [1, 100]" in row
    assert "| `spec.type` | string | yes |" in text
    assert "Validation rules on `spec`:" in text and "baseURL is required" in text


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    source = yaml.safe_load((ROOT / "crds" / "switchyard.dev_llmproviders.yaml").read_text())
    (crds / "p.yaml").write_text(yaml.safe_dump(source))
    output = tmp_path / "fields.md"
    assert docgen.main(["--crds", str(crds), "--output", str(output), "--check"]) == 1
    assert docgen.main(["--crds", str(crds), "--output", str(output)]) == 0
    assert docgen.main(["--crds", str(crds), "--output", str(output), "--check"]) == 0
    source["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["type"][
        "description"] = "changed"
    (crds / "p.yaml").write_text(yaml.safe_dump(source))
    assert docgen.main(["--crds", str(crds), "--output", str(output), "--check"]) == 1
