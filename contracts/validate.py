#!/usr/bin/env python3
"""Validates messages against the JSON Schemas in contracts/schemas.

    validate.py NAME FILE...        NAME: StylizeImage, ImageStylized, ImageStylizationFailed

A FILE holds one message as JSON: the message itself, a MassTransit envelope (its "message" is validated)
or a structured-mode CloudEvent (its "data" is validated). Prints one line per file; exit 1 if any is invalid.
Needs python3-jsonschema (Debian 12: 4.10).
"""
import json
import pathlib
import sys

import jsonschema

SCHEMAS = pathlib.Path(__file__).resolve().parent / "schemas"


def load_validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def payload(document: dict) -> dict:
    if "messageType" in document and "message" in document:
        return document["message"]
    if "specversion" in document and "data" in document:
        return document["data"]
    return document


def errors(validator: jsonschema.Draft202012Validator, document: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(payload(document))]


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    validator = load_validator(argv[1])
    failed = 0
    for path in argv[2:]:
        problems = errors(validator, json.loads(pathlib.Path(path).read_text(encoding="utf-8")))
        if problems:
            failed += 1
            print(f"INVALID {path}: " + "; ".join(problems))
        else:
            print(f"valid {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
