"""likeness_worker/generated/ is what worker/scripts/generate_contracts.py makes from
packages/contracts/schema/ now: a change to the contracts without `npm run contracts` fails here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from likeness_worker.generated import tables

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "worker" / "scripts" / "generate_contracts.py"
GENERATED = ROOT / "worker" / "likeness_worker" / "generated"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_contracts", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_match_the_exported_schemas():
    files = _generator().generate()
    assert sorted(files) == sorted(p.name for p in GENERATED.glob("*.py"))
    for name, text in files.items():
        assert (GENERATED / name).read_text() == text, f"generated/{name} is stale: run `npm run contracts`"


def test_every_message_and_result_schema_has_a_module():
    schemas = {p.stem for p in (ROOT / "packages" / "contracts" / "schema").glob("*.json")}
    assert schemas - {"tables", "redis-keys"} == set(_generator().MODELS)


def test_the_tables_are_the_exported_ones():
    exported = json.loads((ROOT / "packages" / "contracts" / "schema" / "tables.json").read_text())
    assert exported["stepTask"] == tables.STEP_TASK
    assert tuple(exported["errorCodes"]) == tables.ERROR_CODES
    assert exported["storageKeys"] == tables.STORAGE_KEYS
