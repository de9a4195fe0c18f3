"""Check Speech to text requests and responses against the official Swagger 2.0 spec (api-version 2025-10-15).

`SpecContract` finds the operation a URL and method name (the path after `/speechtotext` against the spec's path
templates, literal segments winning over `{id}`), then checks the query (api-version equal to the spec's version,
required parameters present, integers where the spec says integer, no undeclared parameters) and validates JSON
bodies with jsonschema's Draft 4 validator, `#/definitions/...` references resolved against the whole spec.

Choices, since Swagger 2.0 is not quite JSON Schema:
- readOnly properties are flagged in requests (Swagger 2.0: they "MUST NOT be sent as part of the request") and
  allowed in responses;
- formats are not enforced, except `uri`, which must be an absolute URI (scheme and host);
- the spec never says additionalProperties: false, so unknown properties pass (the official examples themselves
  send `description`, which 2025-10-15 no longer declares);
- an error status (>= 400) not declared by the operation is checked against its `default` response; an unknown
  path's error answer is checked against the `Error` definition;
- a response the spec declares without a schema must have no JSON body; x-ms-* extensions are ignored.

The spec comes from $SPEECH_SPEC_PATH, else <repo>/../shared/specs/speechtotext-2025-10-15.json. When it is absent
(a user's clone), `load_or_skip_reason()` returns (None, reason) and the tests that need it skip.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from jsonschema import Draft4Validator, FormatChecker, ValidationError, validators
from referencing import Registry
from referencing.jsonschema import DRAFT4

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO.parent / "shared" / "specs" / "speechtotext-2025-10-15.json"
SPEC_URI = "urn:speechtotext-spec"
HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
PREFIX = "/speechtotext"
ERROR_POINTER = "/definitions/Error"


def _forbid_read_only(validator: Any, read_only: bool, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if read_only:
        yield ValidationError("is read-only: a request must not send it (Swagger 2.0 readOnly)")


RequestValidator = validators.extend(Draft4Validator, {"readOnly": _forbid_read_only})
FORMATS = FormatChecker(formats=())


@FORMATS.checks("uri")
def _is_absolute_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


class Operation:
    """One path template + method of the spec, with its parameters resolved."""

    def __init__(self, contract: SpecContract, template: str, method: str, spec: dict[str, Any]) -> None:
        self.template, self.method, self.spec = template, method, spec
        self.id = spec.get("operationId", f"{method.upper()} {template}")
        params = [contract.resolve(p) for p in spec.get("parameters", [])]
        self.query = {p["name"]: p for p in params if p.get("in") == "query"}
        bodies = [(index, p) for index, p in enumerate(params) if p.get("in") == "body"]
        self.body_index, self.body = bodies[0] if bodies else (None, None)
        self.consumes = spec.get("consumes", [])
        names = [re.escape(part) if i % 2 == 0 else "[^/:]+" for i, part in enumerate(re.split(r"{([^}]+)}", template))]
        self.pattern = re.compile("".join(names))
        self.literal_chars = len(re.sub(r"{[^}]+}", "", template))


class SpecContract:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.version: str = spec["info"]["version"]
        self._registry = Registry().with_resource(SPEC_URI, DRAFT4.create_resource(spec))
        self._validators: dict[tuple[str, bool], Draft4Validator] = {}
        self.operations = [
            Operation(self, template, method, op)
            for template, item in spec["paths"].items()
            for method, op in item.items()
            if method in HTTP_METHODS
        ]
        # the most literal template wins: /models/base before /models/{id}
        self.operations.sort(key=lambda op: -op.literal_chars)

    @classmethod
    def spec_path(cls) -> Path:
        return Path(os.environ.get("SPEECH_SPEC_PATH") or DEFAULT_SPEC)

    @classmethod
    def load(cls, path: Path | str | None = None) -> SpecContract:
        return cls(json.loads(Path(path or cls.spec_path()).read_text(encoding="utf-8")))

    @classmethod
    def load_or_skip_reason(cls) -> tuple[SpecContract | None, str]:
        path = cls.spec_path()
        if not path.is_file():
            return None, f"the official Speech to text spec is not at {path} (set SPEECH_SPEC_PATH to check against it)"
        return cls.load(path), ""

    def resolve(self, item: dict[str, Any]) -> dict[str, Any]:
        """Follow a local `#/...` reference (parameters, definitions)."""
        while "$ref" in item:
            node: Any = self.spec
            for part in item["$ref"].removeprefix("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            item = node
        return item

    # lookups

    def operation(self, method: str, url: str) -> Operation | None:
        path = self._api_path(url)
        if path is None:
            return None
        candidates = [op for op in self.operations if op.pattern.fullmatch(path)]
        return next((op for op in candidates if op.method == method.lower()), None)

    @staticmethod
    def _api_path(url: str) -> str | None:
        path = unquote(urlsplit(url).path)
        index = path.find(PREFIX + "/")
        return path[index + len(PREFIX) :] if index >= 0 else None

    # checks

    def check_request(self, method: str, url: str, json_body: Any, content_type: str | None = None) -> list[str]:
        """What is wrong with this request, per the spec (empty when nothing is)."""
        op = self.operation(method, url)
        if op is None:
            return [self._unknown(method, url)]
        problems = self._query_problems(op, parse_qs(urlsplit(url).query, keep_blank_values=True))
        problems += self._body_problems(op, json_body, content_type)
        return problems

    def check_response(self, method: str, url: str, status: int, json_body: Any) -> list[str]:
        """What is wrong with this response to `method url`, per the spec (empty when nothing is)."""
        op = self.operation(method, url)
        if op is None:
            if status >= 400:
                return self._validate(ERROR_POINTER, json_body, request=False, what="error body")
            return [f"{status} answer to {self._unknown(method, url)}"]
        responses = op.spec["responses"]
        key = str(status) if str(status) in responses else None
        if key is None and status >= 400 and "default" in responses:
            key = "default"
        if key is None:
            return [f"status {status} is not declared for {op.id} (declared: {', '.join(responses)})"]
        if "schema" not in responses[key]:
            return [] if json_body is None else [f"{op.id} {status} declares no body, but one was sent"]
        pointer = f"/paths/{_escape(op.template)}/{op.method}/responses/{key}/schema"
        return self._validate(pointer, json_body, request=False, what=f"{op.id} {status} body")

    def _unknown(self, method: str, url: str) -> str:
        path = self._api_path(url)
        if path is None:
            return f"{url} is not under {PREFIX}/"
        if any(op.pattern.fullmatch(path) for op in self.operations):
            return f"{method.upper()} is not an operation of {PREFIX}{path}"
        return f"{PREFIX}{path} matches no path of the spec"

    def _query_problems(self, op: Operation, query: dict[str, list[str]]) -> list[str]:
        problems = []
        version = query.get("api-version")
        if version and version[0] != self.version:
            problems.append(f"api-version is {version[0]!r}, the spec's is {self.version!r}")
        for name, param in op.query.items():
            values = query.get(name)
            if not values:
                if param.get("required"):
                    problems.append(f"required query parameter {name!r} is missing ({op.id})")
            elif param.get("type") == "integer" and not re.fullmatch(r"-?\d+", values[0]):
                problems.append(f"query parameter {name!r} must be an integer, got {values[0]!r}")
        problems += [f"query parameter {name!r} is not declared for {op.id}" for name in query if name not in op.query]
        return problems

    def _body_problems(self, op: Operation, json_body: Any, content_type: str | None) -> list[str]:
        if op.body is None:
            return [] if json_body is None else [f"{op.id} takes no body, but a JSON body was sent"]
        schema = op.body.get("schema", {})
        if schema.get("format") == "binary":
            return []
        problems = []
        media = (content_type or "").split(";")[0].strip().lower()
        if media and op.consumes and media not in op.consumes:
            problems.append(f"Content-Type {media!r} is not one of {op.consumes} ({op.id})")
        if json_body is None:
            if op.body.get("required"):
                problems.append(f"{op.id} requires a JSON body ({op.body['name']})")
            return problems
        pointer = f"/paths/{_escape(op.template)}/{op.method}/parameters/{op.body_index}/schema"
        return problems + self._validate(pointer, json_body, request=True, what=f"{op.id} body")

    def _validate(self, pointer: str, instance: Any, *, request: bool, what: str) -> list[str]:
        if instance is None:
            return [f"{what}: missing (no JSON body)"]
        validator = self._validator(pointer, request)
        errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message))
        return list(dict.fromkeys(f"{what}: {_where(e)}: {e.message}" for e in errors))  # allOf can repeat one

    def _validator(self, pointer: str, request: bool) -> Draft4Validator:
        key = (pointer, request)
        if key not in self._validators:
            cls = RequestValidator if request else Draft4Validator
            schema = {"$ref": f"{SPEC_URI}#{pointer}"}
            self._validators[key] = cls(schema, registry=self._registry, format_checker=FORMATS)
        return self._validators[key]


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")


def _where(error: ValidationError) -> str:
    return "/".join(str(part) for part in error.absolute_path) or "(root)"
