"""docs/configuration.md describes exactly the keys the configuration's JSON Schema has."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from bridge.config import json_schema
from tests.bridge.conftest import REPO

DOCS = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
SCHEMA = json_schema()
#: The page's sections and the part of the schema each one documents.
SECTIONS = {
    "mqtt": "MqttConfig",
    "frames": "FramesConfig",
    "models": "ModelConfig",
    "models.faces": "FacesConfig",
    "cameras": "CameraConfig",
    "cameras.<name>.meter": "MeterConfig",
    "cameras.<name>.meter.dials": "DialConfig",
    "bridge": "BridgeSection",
    "http": "HttpConfig",
}


def documented() -> dict[str, dict[str, str]]:
    """Each section's table: key -> its default cell."""
    tables: dict[str, dict[str, str]] = {}
    section = None
    for line in DOCS.splitlines():
        if line.startswith("#"):
            heading = re.match(r"#+ `([^`]+)`$", line)
            section = heading.group(1) if heading else None
            if section:
                tables.setdefault(section, {})
        elif section and line.startswith("| `"):
            keys_cell, default = (cell.strip() for cell in line.strip("|").split("|")[:2])
            for key in re.findall(r"`([^`]+)`", keys_cell):
                tables[section][key] = default
    return tables


def properties(definition: str) -> dict[str, Any]:
    found: dict[str, Any] = SCHEMA["$defs"][definition]["properties"]
    return found


def test_the_page_has_a_section_for_every_top_level_key() -> None:
    assert set(SCHEMA["properties"]) == {s for s in SECTIONS if "." not in s}
    assert set(SECTIONS) <= set(documented())


@pytest.mark.parametrize(("section", "definition"), SECTIONS.items())
def test_each_section_documents_exactly_the_schemas_keys(section: str, definition: str) -> None:
    assert set(documented()[section]) == set(properties(definition))


@pytest.mark.parametrize(("section", "definition"), SECTIONS.items())
def test_a_default_written_as_a_value_is_the_schemas_default(section: str, definition: str) -> None:
    for key, cell in documented()[section].items():
        literal = re.fullmatch(r"`([^`<]+)`", cell)
        if literal is None:
            continue  # prose: "none", "by task", "15 MiB", a pattern with <placeholders>
        assert yaml.safe_load(literal.group(1)) == properties(definition)[key].get("default"), key


def test_nested_settings_are_named_on_the_page() -> None:
    for definition in ("TlsConfig", "DedupOptions"):
        for key in properties(definition):
            assert f"`{key}`" in DOCS or f"{key}:" in DOCS, (definition, key)


def test_check_config_prints_the_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "check-config", "--schema"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    printed = json.loads(done.stdout)
    assert printed == json.loads(json.dumps(SCHEMA))
    assert printed["properties"]["cameras"]["additionalProperties"]["$ref"].endswith("CameraConfig")
