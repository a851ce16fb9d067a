"""Regenerates ../library/arguments.json from a real sd-scripts checkout: the flags the fake's
parsers accept, so that they are sd-scripts' own (a flag it lacks exits 2, as argparse does).

    python tools/extract_arguments.py /path/to/sd-scripts > library/arguments.json

Only argparse is needed: each ``add_*_arguments`` function that train_network.py's
``setup_parser()`` calls (and sdxl_train_util's ``add_sdxl_training_arguments``) is lifted out of
its module with ``ast`` and run against a bare parser; torch and the rest are never imported.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

FUNCTIONS = {
    "library/utils.py": ["add_logging_arguments"],
    "library/train_util.py": ["add_sd_models_arguments", "add_dataset_arguments", "add_training_arguments",
                              "add_masked_loss_arguments", "add_optimizer_arguments"],
    "library/sai_model_spec.py": ["add_model_spec_arguments"],
    "library/deepspeed_utils.py": ["add_deepspeed_arguments"],
    "library/config_util.py": ["add_config_arguments"],
    "library/custom_train_functions.py": ["add_custom_train_arguments"],
    "library/sdxl_train_util.py": ["add_sdxl_training_arguments"],
    "train_network.py": ["setup_parser"],
}
MODULES = ("train_util", "sai_model_spec", "deepspeed_utils", "config_util", "custom_train_functions")


def load(checkout: Path) -> dict[str, Any]:
    functions: dict[str, Any] = {}

    class Module:  # `train_util.add_…` inside a lifted function: the lifted function of that name
        def __getattr__(self, name: str) -> Any:
            return functions[name]

    for path, names in FUNCTIONS.items():
        tree = ast.parse((checkout / path).read_text(encoding="utf-8"))
        body: list[ast.stmt] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
        missing = set(names) - {n.name for n in body if isinstance(n, ast.FunctionDef)}
        if missing:
            raise SystemExit(f"{path} has no {', '.join(sorted(missing))}")
        namespace: dict[str, Any] = {"argparse": argparse, "Path": Path, **{m: Module() for m in MODULES}}
        exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), namespace)  # noqa: S102
        functions.update({n: namespace[n] for n in names})
    for fn in functions.values():
        fn.__globals__.update(functions)
    return functions


def entry(action: argparse.Action) -> dict[str, Any]:
    out: dict[str, Any] = {"flags": action.option_strings, "dest": action.dest}
    if isinstance(action, argparse._StoreTrueAction):
        out["action"] = "store_true"
        return out
    kind = getattr(action.type, "__name__", None) if action.type is not None else None
    if kind is not None:
        out["type"] = kind if kind in ("str", "int", "float", "int_or_float", "Path") else "str"
    if action.nargs is not None:
        out["nargs"] = action.nargs
    if action.default is not None:
        out["default"] = action.default
    if action.choices is not None:
        out["choices"] = list(action.choices)
    return out


def main() -> None:
    checkout = Path(sys.argv[1])
    functions = load(checkout)
    parser = functions["setup_parser"]()
    base = [entry(a) for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    functions["add_sdxl_training_arguments"](parser)
    known = {a["dest"] for a in base}
    sdxl = [entry(a) for a in parser._actions if not isinstance(a, argparse._HelpAction) and a.dest not in known]
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("{")
    source = (f"kohya-ss/sd-scripts {commit or '?'}: train_network.py setup_parser() and "
              "library/sdxl_train_util.py add_sdxl_training_arguments(), made by tools/extract_arguments.py")
    print(f'  "source": {json.dumps(source)},')
    for i, (name, rows) in enumerate((("train_network", base), ("sdxl_train_network", sdxl))):
        print(f'  "{name}": [')
        print(",\n".join("    " + json.dumps(r, ensure_ascii=False) for r in rows))
        print("  ]" + ("," if i == 0 else ""))
    print("}")


if __name__ == "__main__":
    main()
