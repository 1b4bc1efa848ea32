#!/usr/bin/env python3
"""Validate CycloneDX JSON files against the official CycloneDX JSON schema.

Usage: scripts/validate-cyclonedx.py [--schema-version 1.6] FILE...

Uses cyclonedx-python-lib's strict JSON validator (JsonStrictValidator: the
official schema with additionalProperties=false everywhere, plus format checks)
for the given schema version (default 1.6). A file's own `specVersion` must
equal that version. Prints "FILE: valid" per good file; prints every schema
error of a bad file and exits 1 if any file is invalid. Exit 2 on usage errors
or when the library is missing (run scripts/setup-test-env.sh, then use
.venv/bin/python or $AGENTLESS_PYTHON).
"""

import argparse
import json
import os
import sys

try:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
except ImportError as e:  # pragma: no cover - environment problem
    # Fall back to the project venv made by scripts/setup-test-env.sh.
    for _cand in (os.environ.get("AGENTLESS_PYTHON"),
                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".venv", "bin", "python")):
        # (a venv's python is a symlink to the base interpreter: compare sys.prefix, not the binary)
        if _cand and os.path.isfile(_cand) and not os.environ.get("_AGENTLESS_VALIDATE_REEXEC") \
                and os.path.realpath(os.path.join(os.path.dirname(_cand), "..")) != os.path.realpath(sys.prefix):
            os.environ["_AGENTLESS_VALIDATE_REEXEC"] = "1"
            os.execv(_cand, [_cand, os.path.abspath(__file__)] + sys.argv[1:])
    print(
        f"error: cyclonedx-python-lib[json-validation] is not importable by {sys.executable}: {e}\n"
        "hint: run scripts/setup-test-env.sh and use .venv/bin/python (AGENTLESS_PYTHON)",
        file=sys.stderr,
    )
    sys.exit(2)

MAX_ERRORS_SHOWN = 50


def _path(err) -> str:
    """JSON-pointer-ish location of a jsonschema error."""
    data = getattr(err, "data", None)
    path = getattr(data, "absolute_path", None)
    if path is None:
        return "?"
    return "/" + "/".join(str(p) for p in path)


def _message(err) -> str:
    data = getattr(err, "data", None)
    msg = getattr(data, "message", None) or str(err)
    return msg if len(msg) <= 500 else msg[:500] + "..."


def validate_file(path: str, validator, version: str) -> list:
    """Return a list of error strings (empty when valid)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return [f"cannot read: {e}"]
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        return [f"not JSON: {e}"]
    problems = []
    if not isinstance(doc, dict):
        return ["top level is not a JSON object"]
    spec = doc.get("specVersion")
    if spec != version:
        problems.append(f"specVersion is {spec!r}, expected {version!r}")
    errors = validator.validate_str(text, all_errors=True)
    if errors is not None:
        for err in errors:
            problems.append(f"{_path(err)}: {_message(err)}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema-version", default="1.6", help="CycloneDX schema version (default 1.6)")
    ap.add_argument("files", nargs="+", metavar="FILE")
    args = ap.parse_args(argv)

    try:
        sv = SchemaVersion.from_version(args.schema_version)
    except Exception:  # noqa: BLE001 - library raises ValueError/KeyError depending on version
        print(f"error: unknown CycloneDX schema version {args.schema_version!r}", file=sys.stderr)
        return 2
    validator = JsonStrictValidator(sv)

    bad = 0
    for path in args.files:
        problems = validate_file(path, validator, args.schema_version)
        if problems:
            bad += 1
            print(f"{path}: INVALID against CycloneDX {args.schema_version} ({len(problems)} error(s))")
            for p in problems[:MAX_ERRORS_SHOWN]:
                print(f"  {p}")
            if len(problems) > MAX_ERRORS_SHOWN:
                print(f"  ... {len(problems) - MAX_ERRORS_SHOWN} more")
        else:
            print(f"{path}: valid CycloneDX {args.schema_version}")
    if bad:
        print(f"{bad} of {len(args.files)} file(s) invalid", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
