"""Checks on infra/ (the Bicep `azd up` deploys), all offline and fast.

1. checkov passes over infra/ with the project checks in infra/policies (every skip carries a reason in the Bicep).
2. Every .bicep file parses with pycep, the parser checkov uses: a file it cannot parse is a file checkov skips.
3. The Bicep, local.settings.example.json and the code agree: every setting the code reads and every %NAME% a
   binding uses is an app setting in both, every queue and container a binding resolves to exists in the Bicep,
   nothing is set that nobody reads, and SPEECH_KEY is never set in Azure.
   Flex Consumption takes the site: only site-config properties Flex accepts, scale bounds in Flex's range.
   Secrets stay secret: a @secure() parameter's value reaches modules only as @secure() parameters, and no output.
4. Those checks can fail: the same checks over a copy of infra/ with a deliberate mistake do fail.

checkov cannot share a virtualenv with this project's pytest (checkov pins packaging<24, pytest 9 needs >=24), so
it runs from its own virtualenv: $CHECKOV_BIN, else .venv-checkov/bin/checkov, else next to this Python, else PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
POLICIES = "policies"  # project checkov checks, relative to the infra directory
LOCAL_SETTINGS = REPO / "local.settings.example.json"
SCRIPTS = REPO / "scripts"
PROJECT_CHECKS = {"CKV_CSA_1", "CKV_CSA_2", "CKV_CSA_3", "CKV_CSA_4"}

# Settings the platform reads rather than the app code: allowed without appearing in shared.settings.SETTINGS.
HOST_SETTINGS_AZURE = {
    "AZURE_CLIENT_ID",  # DefaultAzureCredential picks the user-assigned identity
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",  # Entra ID auth for telemetry
}
HOST_PREFIXES_AZURE = ("AzureWebJobsStorage__",)  # identity-based host storage connection
HOST_SETTINGS_LOCAL = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsFeatureFlags"}
# Flex Consumption takes the runtime from functionAppConfig and rejects these as app settings.
FORBIDDEN_ON_FLEX = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"}
# In Azure the app authenticates with its managed identity; a key here would bypass that (and Speech has local
# auth disabled anyway). Locally the Speech emulator takes a key.
LOCAL_ONLY = {"SPEECH_KEY"}
IDENTITY_STORAGE = {
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",  # the host's diagnostic events
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
}
# Containers that exist for the platform, not the code: the Flex Consumption deployment package container.
INFRA_CONTAINER_PREFIXES = ("app-package-",)
# siteConfig properties a Flex Consumption site may set: what the Flex site-config schema has and Flex honours.
# Newer Flex stamps refuse others with ARM error 51021 (ftpsState, use32BitWorkerProcess, netFrameworkVersion,
# linuxFxVersion, functionAppScaleLimit, ...), older stamps ignore them, so a new one needs checking first.
FLEX_SITE_CONFIG = {"minTlsVersion", "scmMinTlsVersion", "http20Enabled", "cors", "appSettings"}
FLEX_MAX_INSTANCES = (40, 1000)  # Flex Consumption's lowest and highest maximumInstanceCount


# ---------------------------------------------------------------------------------------------------------------
# A small evaluator for the Bicep as pycep parses it: literals, parameters (with what the calling module passes),
# variables, loops, string interpolation, union() and string(). Anything known only at deploy time (resource
# properties, module outputs, uniqueString, ...) stays an Opaque value carrying its source text.
# ---------------------------------------------------------------------------------------------------------------

UNRESOLVED = "<unresolved appsettings>"


def _parser() -> Any:
    """pycep's parser, imported lazily so a missing dev dependency fails these tests, not the whole collection."""
    try:
        from pycep import BicepParser
    except ImportError:
        pytest.fail("pycep is not installed: add pycep-parser==0.5.1 (the version checkov 3.3.30 uses) to the dev venv")
    return BicepParser()


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


class Opaque(str):
    """A value known only at deploy time; the string is the Bicep source it came from."""


@dataclass
class _Scope:
    path: Path
    doc: dict[str, Any]
    params: dict[str, Any]
    locals: dict[str, Any]

    def with_local(self, name: str, value: Any) -> _Scope:
        return _Scope(self.path, self.doc, self.params, {**self.locals, name: value})


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def _accessor_path(node: Any) -> list[Any]:
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        return _accessor_path(operands["operand_1"]) + _accessor_path(operands["operand_2"])
    return [node]


def _resolve_name(name: str, scope: _Scope, seen: frozenset[str]) -> Any:
    if name in scope.locals:
        return scope.locals[name]
    if name in scope.params:
        return scope.params[name]
    variables = scope.doc.get("variables") or {}
    if name in variables:
        if name in seen:
            return Opaque(name)
        return _evaluate(variables[name]["value"], scope, seen | {name})
    parameters = scope.doc.get("parameters") or {}
    if name in parameters:
        default = parameters[name].get("default")
        return Opaque(f"param {name}") if default is None else _evaluate(default, scope, seen | {name})
    return Opaque(name)  # a resource or module symbol, or a function


def _loop(node: dict[str, Any], scope: _Scope, seen: frozenset[str]) -> Any:
    loop = node["loop_type"]
    detail = loop.get("detail") or {}
    items = _evaluate(detail.get("array_name"), scope, seen)
    if loop.get("type") not in ("array", "array_index") or not isinstance(items, list):
        return Opaque("for-loop")
    results = []
    for index, item in enumerate(items):
        inner = scope.with_local(detail["item_name"], item)
        if detail.get("index_name"):
            inner = inner.with_local(detail["index_name"], index)
        results.append(_evaluate(node.get("config"), inner, seen))
    return results


def _evaluate(node: Any, scope: _Scope, seen: frozenset[str] = frozenset()) -> Any:
    if node is None or isinstance(node, (bool, int, float)):
        return node
    if isinstance(node, list):
        return [_evaluate(item, scope, seen) for item in node]
    if isinstance(node, str):
        if _IDENTIFIER.match(node):
            # pycep renders identifiers and string literals alike; a name in scope wins (no literal in infra/
            # is spelled like a parameter or variable).
            known = node in scope.locals or node in scope.params
            known = known or node in (scope.doc.get("variables") or {}) or node in (scope.doc.get("parameters") or {})
            return _resolve_name(node, scope, seen) if known else node
        if "${" not in node:
            return node
        parts = []
        literals, expressions = _INTERPOLATION.split(node)[::2], [*_INTERPOLATION.findall(node), None]
        for literal, expression in zip(literals, expressions, strict=True):
            parts.append(literal)
            if expression is not None:
                value = _evaluate_path(expression.strip().split("."), scope, seen)
                if isinstance(value, Opaque) or not isinstance(value, (str, int, bool)):
                    return Opaque(node)
                parts.append(str(value).lower() if isinstance(value, bool) else str(value))
        return "".join(parts)
    if isinstance(node, dict):
        if "loop_type" in node:
            return _loop(node, scope, seen)
        if set(node) == {"operator"}:
            if node["operator"].get("type") == "property_accessor":
                return _evaluate_path(_accessor_path(node), scope, seen)
            return Opaque(f"operator {node['operator'].get('type')}")
        if set(node) == {"function"}:
            function = node["function"]
            args = [_evaluate(arg, scope, seen) for arg in (function.get("parameters") or {}).values()]
            if function.get("type") == "union" and all(isinstance(arg, dict) for arg in args):
                merged: dict[str, Any] = {}
                for arg in args:
                    merged.update(arg)
                return merged
            if function.get("type") == "string" and len(args) == 1 and not isinstance(args[0], Opaque):
                return str(args[0]).lower() if isinstance(args[0], bool) else str(args[0])
            return Opaque(f"{function.get('type')}()")
        return {_unquote(key): _evaluate(value, scope, seen) for key, value in node.items()}
    return Opaque(repr(node))


def _evaluate_path(path: list[Any], scope: _Scope, seen: frozenset[str]) -> Any:
    head, rest = path[0], path[1:]
    value = _resolve_name(head, scope, seen) if isinstance(head, str) and _IDENTIFIER.match(head) else Opaque(str(head))
    for member in rest:
        if isinstance(value, dict) and isinstance(member, str) and member in value:
            value = value[member]
        else:
            return Opaque(".".join(str(part) for part in path))
    return value


def _body(config: dict[str, Any]) -> dict[str, Any]:
    """The resource/module body, unwrapped from pycep's `if (...)` / `for` envelope."""
    if "loop_type" in config or ("condition" in config and isinstance(config.get("config"), dict)):
        return config["config"]
    return config


@dataclass
class BicepInventory:
    app_settings: dict[str, Any]  # name -> value (Opaque when known only at deploy time)
    queues: list[str]
    containers: list[str]
    outputs: dict[str, Any]  # outputs of the root template(s)
    files: list[Path]


def read_bicep(infra_dir: Path) -> BicepInventory:
    """Evaluate every template under infra_dir, following local modules with the parameters passed to them."""
    parser = _parser()
    docs = {path.resolve(): parser.parse(file_path=path) for path in sorted(infra_dir.rglob("*.bicep"))}
    called = set()
    for path, doc in docs.items():
        for module in (doc.get("modules") or {}).values():
            if module.get("type") == "local":
                called.add((path.parent / module["detail"]["path"]).resolve())
    inventory = BicepInventory({}, [], [], {}, list(docs))

    def visit(path: Path, params: dict[str, Any], root: bool) -> None:
        doc = docs[path]
        scope = _Scope(path, doc, params, {})
        for resource in (doc.get("resources") or {}).values():
            if resource.get("existing"):
                continue
            config = resource.get("config") or {}
            looped = "loop_type" in config
            bodies = _evaluate(config, scope) if looped else [_evaluate(_body(config), scope)]
            for body in bodies if isinstance(bodies, list) else []:
                if not isinstance(body, dict):
                    continue
                _collect(inventory, resource["type"], body)
        for module in (doc.get("modules") or {}).values():
            if module.get("type") != "local":
                continue
            body = _body(module.get("config") or {})
            passed = _evaluate(body.get("params") or {}, scope)
            visit((path.parent / module["detail"]["path"]).resolve(), passed if isinstance(passed, dict) else {}, False)
        if root:
            for name, output in (doc.get("outputs") or {}).items():
                inventory.outputs[name] = _evaluate(output.get("value"), scope)

    for path in docs:
        if path not in called:
            visit(path, {}, True)
    return inventory


def _collect(inventory: BicepInventory, resource_type: str, body: dict[str, Any]) -> None:
    name = body.get("name")
    if resource_type == "Microsoft.Web/sites/config" and name == "appsettings":
        properties = body.get("properties")
        if isinstance(properties, dict):
            inventory.app_settings.update(properties)
        else:
            inventory.app_settings[UNRESOLVED] = properties
    elif resource_type == "Microsoft.Web/sites":
        site_config = (body.get("properties") or {}).get("siteConfig") or {}
        for setting in site_config.get("appSettings") or []:
            if isinstance(setting, dict) and isinstance(setting.get("name"), str):
                inventory.app_settings[setting["name"]] = setting.get("value")
    elif resource_type == "Microsoft.Storage/storageAccounts/queueServices/queues":
        inventory.queues.append(name)
    elif resource_type == "Microsoft.Storage/storageAccounts/blobServices/containers":
        inventory.containers.append(name)


# ---------------------------------------------------------------------------------------------------------------
# What the code uses, and the consistency check
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    function: str
    type: str
    expression: str  # queueName, path or schedule as written, e.g. "%DEPLOY_QUEUE%-poison"
    connection: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class CodeNames:
    settings: frozenset[str]  # shared.settings.SETTINGS
    bindings: tuple[Binding, ...]


_PERCENT = re.compile(r"%([^%]+)%")


def code_names_from(functions: Mapping[str, list[dict[str, Any]]], settings: Mapping[str, Any]) -> CodeNames:
    """The names the functions' bindings use: function name -> raw bindings, as the worker reports them to the host."""
    bindings = []
    for name, raw_bindings in functions.items():
        for data in raw_bindings:
            kind = str(data.get("type"))
            for attribute in ("queueName", "path", "schedule", "containerName"):
                if data.get(attribute):
                    source = data.get("source")
                    bindings.append(
                        Binding(
                            name, kind, str(data[attribute]), data.get("connection"), str(source) if source else None
                        )
                    )
    return CodeNames(frozenset(settings), tuple(bindings))


def _resolve(expression: str, values: Mapping[str, Any]) -> str | None:
    """Substitute %NAME% as the Functions host does; None if a value is missing or only known at deploy time."""
    missing = [
        name
        for name in _PERCENT.findall(expression)
        if not isinstance(values.get(name), str) or isinstance(values.get(name), Opaque)
    ]
    if missing:
        return None
    return _PERCENT.sub(lambda match: str(values[match.group(1)]), expression)


def _target(binding: Binding, resolved: str) -> tuple[str, str] | None:
    if binding.type in ("queue", "queueTrigger"):
        return "queue", resolved
    if binding.type in ("blob", "blobTrigger", "blobInput", "blobOutput"):
        return "container", resolved.split("/", 1)[0]
    return None


def consistency_problems(
    infra_dir: Path, code: CodeNames, local_settings: Mapping[str, Any], scripts_dir: Path | None = None
) -> list[str]:
    """Everything that disagrees between the Bicep in infra_dir, the code's names and the local settings."""
    bicep = read_bicep(infra_dir)
    azure = bicep.app_settings
    problems: list[str] = []
    if UNRESOLVED in azure:
        problems.append(f"the appsettings of the Function App can't be evaluated statically: {azure.pop(UNRESOLVED)!r}")
    binding_settings = {name for binding in code.bindings for name in _PERCENT.findall(binding.expression)}

    # Settings the code reads, in Azure and locally.
    for name in sorted(code.settings | binding_settings):
        if name not in local_settings:
            problems.append(f"{name} is read by the code but missing from local.settings.example.json")
        if name in LOCAL_ONLY:
            continue
        if name == "AzureWebJobsStorage":
            missing = sorted(IDENTITY_STORAGE - set(azure))
            if missing:
                problems.append(f"AzureWebJobsStorage must be identity-based in the Bicep; missing {missing}")
            continue
        if name not in azure:
            problems.append(f"{name} is read by the code but is not an app setting in the Bicep")
    for name in sorted(LOCAL_ONLY & set(azure)):
        problems.append(f"{name} must not be set in Azure (the app uses its managed identity)")
    if "AzureWebJobsStorage" in azure:
        problems.append("AzureWebJobsStorage is set as a connection string in the Bicep; use AzureWebJobsStorage__*")
    if azure.get("AzureWebJobsStorage__credential") not in (None, "managedidentity"):
        problems.append("AzureWebJobsStorage__credential must be 'managedidentity'")
    for name in sorted(FORBIDDEN_ON_FLEX & set(azure)):
        problems.append(f"{name} must not be an app setting on Flex Consumption (functionAppConfig sets it)")

    # Settings nobody reads.
    for name in sorted(azure):
        if name in code.settings or name in binding_settings or name in HOST_SETTINGS_AZURE:
            continue
        if name.startswith(HOST_PREFIXES_AZURE) or name in FORBIDDEN_ON_FLEX:
            continue
        problems.append(f"app setting {name} in the Bicep is not read by the code (nor an allowed host setting)")
    for name in sorted(local_settings):
        if name not in code.settings and name not in binding_settings and name not in HOST_SETTINGS_LOCAL:
            problems.append(f"{name} in local.settings.example.json is not read by the code")

    # Connections other than AzureWebJobsStorage need their own identity-based settings.
    for connection in sorted({b.connection for b in code.bindings if b.connection} - {"AzureWebJobsStorage"}):
        if not any(name.startswith(f"{connection}__") for name in azure):
            problems.append(f"binding connection {connection} has no identity-based {connection}__* app settings")

    # Every queue and container a binding resolves to exists in the Bicep, with the same name locally.
    used: dict[str, set[str]] = {"queue": set(), "container": set()}
    for binding in code.bindings:
        if binding.type == "timerTrigger":
            schedule = _resolve(binding.expression, azure)
            if schedule is not None and len(schedule.split()) != 6:
                problems.append(f"{binding.function}: schedule {schedule!r} in the Bicep is not a 6-field NCRONTAB")
            continue
        in_azure = _resolve(binding.expression, azure)
        local = _resolve(binding.expression, {k: str(v) for k, v in local_settings.items()})
        if in_azure is None:
            if all(name in azure for name in _PERCENT.findall(binding.expression)):
                problems.append(f"{binding.function}: {binding.expression} is not a literal name in the Bicep")
            continue
        target = _target(binding, in_azure)
        if target is None:
            continue
        kind, name = target
        used[kind].add(name)
        existing = bicep.queues if kind == "queue" else bicep.containers
        if name not in existing:
            problems.append(f"{binding.function}: {kind} {name!r} ({binding.expression}) is not created by the Bicep")
        if local is not None and (_target(binding, local) or (kind, ""))[1] != name:
            problems.append(f"{binding.function}: {binding.expression} is {name!r} in Azure but {local!r} locally")

    # Queues and containers nobody uses (the Event Grid dead-letter container is used by the hooks, checked below).
    dead_letter = bicep.outputs.get("EVENTGRID_DEADLETTER_CONTAINER_NAME")
    for queue in bicep.queues:
        if queue not in used["queue"]:
            problems.append(f"queue {queue!r} is created by the Bicep but no binding uses it")
    for container in bicep.containers:
        infra = str(container).startswith(INFRA_CONTAINER_PREFIXES) or container == dead_letter
        if container not in used["container"] and not infra:
            problems.append(f"container {container!r} is created by the Bicep but no binding uses it")

    # The postdeploy hook subscribes the Event Grid blob trigger: same function, same container.
    event_grid = [b for b in code.bindings if b.type == "blobTrigger" and (b.source or "").lower() == "eventgrid"]
    if scripts_dir is not None and event_grid:
        if len({b.function for b in event_grid}) > 1:
            problems.append("scripts/postdeploy.* subscribe one Event Grid blob trigger, the code has several")
        trigger = event_grid[0]
        for script, pattern in (
            ("postdeploy.sh", r'^INGEST_FUNCTION="([^"]+)"'),
            ("postdeploy.ps1", r"^\$IngestFunction = '([^']+)'"),
        ):
            text = (scripts_dir / script).read_text()
            match = re.search(pattern, text, re.MULTILINE)
            if not match or match.group(1) != trigger.function:
                problems.append(f"scripts/{script} does not subscribe the Event Grid blob trigger {trigger.function}")
            # Undeliverable events go to the dead-letter container the Bicep creates, written with an identity
            # (the storage account takes no Shared Key).
            if "--deadletter-identity-endpoint" not in text or "EVENTGRID_DEADLETTER_CONTAINER_NAME" not in text:
                problems.append(f"scripts/{script} does not dead-letter into EVENTGRID_DEADLETTER_CONTAINER_NAME")
        if not isinstance(dead_letter, str) or dead_letter not in bicep.containers:
            problems.append(
                f"output EVENTGRID_DEADLETTER_CONTAINER_NAME ({dead_letter!r}) is not a container of the Bicep"
            )
        container = _resolve(trigger.expression, azure)
        output = bicep.outputs.get("TRAINING_CONTAINER_NAME")
        if container is None or output != container.split("/", 1)[0]:
            problems.append(f"output TRAINING_CONTAINER_NAME ({output!r}) is not the container of {trigger.function}")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# checkov
# ---------------------------------------------------------------------------------------------------------------


def _checkov_binary() -> str:
    candidates = [
        os.environ.get("CHECKOV_BIN"),
        str(REPO / ".venv-checkov" / "bin" / "checkov"),
        str(Path(sys.executable).parent / "checkov"),
        shutil.which("checkov"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "checkov not found. It needs its own virtualenv (it pins packaging<24; pytest 9 needs >=24):\n"
        "  python3.13 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30\n"
        "or point CHECKOV_BIN at an existing checkov executable."
    )


@dataclass
class CheckovRun:
    returncode: int
    summary: dict[str, Any]
    passed: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    output: str


def run_checkov(infra_dir: Path) -> CheckovRun:
    """checkov over the Bicep in infra_dir with the project checks, offline (no Prisma Cloud, no update check)."""
    env = {
        **os.environ,
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        "CKV_PARSE_ERROR_FAIL": "true",
        "BC_SKIP_MAPPING": "TRUE",
    }
    command = [
        _checkov_binary(),
        "-d",
        str(infra_dir),
        "--framework",
        "bicep",
        "--skip-download",
        "--external-checks-dir",
        str(infra_dir / POLICIES),
        "--output",
        "json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not produce JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    report = next((r for r in report if r.get("check_type") == "bicep"), {}) if isinstance(report, list) else report
    results = report.get("results") or {}
    return CheckovRun(
        result.returncode,
        report.get("summary") or {},
        results.get("passed_checks") or [],
        results.get("failed_checks") or [],
        results.get("skipped_checks") or [],
        result.stdout[-4000:] + result.stderr[-4000:],
    )


def _describe(checks: list[dict[str, Any]]) -> str:
    return "\n".join(f"  {c['check_id']} {c['resource']} ({c['file_path']}): {c.get('check_name')}" for c in checks)


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_report() -> CheckovRun:
    return run_checkov(INFRA)


@pytest.fixture(scope="module")
def code() -> CodeNames:
    """The real app's names, from the worker's index. If the worker refuses the app this fails: a skip would hide a
    broken contract."""
    from local.runtime import Worker, WorkerInitError
    from shared.settings import SETTINGS

    try:
        worker = Worker.get()
    except WorkerInitError as exc:
        pytest.fail(f"the worker refused function_app, so its bindings can't be checked against infra/: {exc}")
    return code_names_from(worker.bindings, SETTINGS)


@pytest.fixture(scope="module")
def local_settings() -> dict[str, Any]:
    return json.loads(LOCAL_SETTINGS.read_text())["Values"]


@pytest.fixture
def infra_copy(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "infra"
    shutil.copytree(INFRA, target, ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    yield target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} should occur once in {path.name}; update this test with the Bicep"
    path.write_text(text.replace(old, new))


# ---------------------------------------------------------------------------------------------------------------
# 1. checkov
# ---------------------------------------------------------------------------------------------------------------


def test_checkov_passes(checkov_report: CheckovRun) -> None:
    run = checkov_report
    assert run.summary.get("parsing_errors", 0) == 0, f"checkov could not parse some Bicep:\n{run.output}"
    assert not run.failed, f"checkov failed checks:\n{_describe(run.failed)}"
    assert run.returncode == 0, run.output


def test_checkov_ran_the_project_checks(checkov_report: CheckovRun) -> None:
    ran = {check["check_id"] for check in checkov_report.passed}
    assert PROJECT_CHECKS <= ran, f"project checks in infra/{POLICIES} did not run: {sorted(PROJECT_CHECKS - ran)}"


def test_every_checkov_skip_is_justified(checkov_report: CheckovRun) -> None:
    def reason(check: dict[str, Any]) -> str:
        return ((check.get("check_result") or {}).get("suppress_comment") or "").strip()

    unexplained = [c for c in checkov_report.skipped if len(reason(c)) < 20]
    assert not unexplained, f"skips need a reason (// checkov:skip=ID: why):\n{_describe(unexplained)}"
    comments = "\n".join(path.read_text() for path in INFRA.rglob("*.bicep"))
    bare = re.findall(r"checkov:skip=[A-Z0-9_,]+\s*$", comments, re.MULTILINE)
    assert not bare, f"skip comments without a reason: {bare}"


# ---------------------------------------------------------------------------------------------------------------
# 2. Every Bicep file parses (checkov silently skips what pycep can't parse)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(INFRA.rglob("*.bicep")), ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_parses(path: Path) -> None:
    try:
        _parser().parse(file_path=path)
    except pytest.fail.Exception:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser error is the finding
        pytest.fail(f"pycep cannot parse {path.relative_to(REPO)} (so checkov would skip it): {exc}")


def test_registry_modules_are_pinned() -> None:
    references = re.findall(r"'(br/public:[^']+)'", "\n".join(p.read_text() for p in INFRA.rglob("*.bicep")))
    assert references, "expected Azure Verified Modules in infra/"
    unpinned = [ref for ref in references if not re.fullmatch(r"br/public:avm/[a-z0-9/-]+:\d+\.\d+\.\d+", ref)]
    assert not unpinned, f"pin registry modules to an exact version: {unpinned}"


def flex_problems(infra_dir: Path) -> list[str]:
    """What Flex Consumption would refuse: site-config properties it doesn't take, scale limits out of its range."""
    parser = _parser()
    problems = []
    for path in sorted(infra_dir.rglob("*.bicep")):
        doc = parser.parse(file_path=path)
        for name, resource in (doc.get("resources") or {}).items():
            if resource.get("type") != "Microsoft.Web/sites":
                continue
            properties = _body(resource.get("config") or {}).get("properties") or {}
            if "functionAppConfig" not in properties:
                continue
            for key in sorted(set(properties.get("siteConfig") or {}) - FLEX_SITE_CONFIG):
                problems.append(f"{path.name}: {name} sets siteConfig.{key}, which Flex Consumption doesn't take")
        parameter = (doc.get("parameters") or {}).get("maximumInstanceCount")
        if parameter is not None:
            bounds = {d["type"]: d.get("argument") for d in parameter.get("decorators") or []}
            low, high, default = bounds.get("min_value"), bounds.get("max_value"), parameter.get("default")
            if low is None or high is None or low < FLEX_MAX_INSTANCES[0] or high > FLEX_MAX_INSTANCES[1]:
                problems.append(f"{path.name}: maximumInstanceCount must be bounded to {FLEX_MAX_INSTANCES}")
            if default is not None and not (FLEX_MAX_INSTANCES[0] <= default <= FLEX_MAX_INSTANCES[1]):
                problems.append(f"{path.name}: maximumInstanceCount default {default} is outside {FLEX_MAX_INSTANCES}")
    return problems


def _references(node: Any) -> set[str]:
    """The names an expression as pycep parses it may refer to (a literal spelled like a name counts too)."""
    if isinstance(node, str):
        if _IDENTIFIER.match(node):
            return {node}
        return {name for expression in _INTERPOLATION.findall(node) for name in _IDENTIFIER_IN.findall(expression)}
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node))
    if isinstance(node, dict):
        return set().union(*(_references(value) for value in node.values()))
    return set()


_IDENTIFIER_IN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_secure(parameter: dict[str, Any]) -> bool:
    return any(decorator.get("type") == "secure" for decorator in parameter.get("decorators") or [])


def secret_flow_problems(infra_dir: Path) -> list[str]:
    """Where a @secure() parameter's value would be stored in plain text in the deployment history.

    A module's parameters and every template's outputs are kept with the deployment; only @secure() parameters
    are not. So a value derived from a @secure() parameter (directly or through variables) may be passed to a
    local module only as a @secure() parameter of that module, never to a registry module (whose parameters we
    can't see), and never to an output.
    """
    parser = _parser()
    docs = {path.resolve(): parser.parse(file_path=path) for path in sorted(infra_dir.rglob("*.bicep"))}
    problems = []
    for path, doc in docs.items():
        tainted = {name for name, parameter in (doc.get("parameters") or {}).items() if _is_secure(parameter)}
        variables = doc.get("variables") or {}
        changed = True
        while changed:  # variables built from secrets are secrets
            changed = False
            for name, variable in variables.items():
                if name not in tainted and _references(variable.get("value")) & tainted:
                    tainted.add(name)
                    changed = True
        if not tainted:
            continue
        where = path.relative_to(infra_dir.resolve())
        for name, module in (doc.get("modules") or {}).items():
            passed = _body(module.get("config") or {}).get("params") or {}
            target = (
                docs.get((path.parent / module["detail"]["path"]).resolve()) if module.get("type") == "local" else None
            )
            for parameter, value in passed.items():
                secrets = sorted(_references(value) & tainted)
                if not secrets:
                    continue
                if target is None:
                    problems.append(f"{where}: {', '.join(secrets)} passed to module {name} (not a local module)")
                elif not _is_secure((target.get("parameters") or {}).get(parameter) or {}):
                    problems.append(
                        f"{where}: {', '.join(secrets)} reaches module {name}'s parameter {parameter}, which is not "
                        "@secure(): it would be stored in plain text in the deployment history"
                    )
        for name, output in (doc.get("outputs") or {}).items():
            secrets = sorted(_references(output.get("value")) & tainted)
            if secrets:
                problems.append(f"{where}: output {name} carries {', '.join(secrets)}")
    return problems


def test_secure_parameters_stay_secure() -> None:
    problems = secret_flow_problems(INFRA)
    assert not problems, "\n".join(problems)
    main = _parser().parse(file_path=INFRA / "main.bicep")["parameters"]
    assert _is_secure(main["alertWebhookUrl"]), "alertWebhookUrl carries a secret: keep it @secure()"


def test_app_service_auth_keeps_the_blob_webhook_open() -> None:
    """Easy Auth (off by default) must not lock Event Grid out: it calls the webhook with a system key, no token."""
    doc = _parser().parse(file_path=INFRA / "modules" / "function-app.bicep")
    configs = [r for r in doc["resources"].values() if r["type"] == "Microsoft.Web/sites/config"]
    auth = [_body(r["config"]) for r in configs if _body(r["config"]).get("name") == "authsettingsV2"]
    assert len(auth) == 1, "expected one authsettingsV2 config on the Function App"
    validation = auth[0]["properties"]["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "appServiceAuthUnauthenticated"  # browsers sign in, scripts 401
    assert auth[0]["properties"]["platform"]["enabled"] == "enableAppServiceAuth", "on only when the operator says"
    webhook = "/runtime/webhooks/blobs"
    assert webhook in validation["excludedPaths"]
    for script in ("postdeploy.sh", "postdeploy.ps1"):
        assert f"{webhook}?functionName=" in (SCRIPTS / script).read_text(), script


def test_flex_consumption_accepts_the_site() -> None:
    problems = flex_problems(INFRA)
    assert not problems, "\n".join(problems)


def test_parameters_file_matches_main_bicep() -> None:
    main = _parser().parse(file_path=INFRA / "main.bicep")["parameters"]
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    required = {name for name, param in main.items() if param.get("default") is None}
    assert required <= set(given), f"azd cannot fill required parameters: {sorted(required - set(given))}"
    assert set(given) <= set(main), f"main.parameters.json sets unknown parameters: {sorted(set(given) - set(main))}"
    # ${NAME=default}: azd's fallback when NAME isn't set must be the Bicep default, so both say the same.
    for name, entry in given.items():
        fallback = re.fullmatch(r"\$\{[A-Z0-9_]+=(.*)\}", str(entry.get("value")))
        default = main[name].get("default")
        if fallback and not isinstance(default, (dict, list)):
            expected = str(default).lower() if isinstance(default, bool) else str(default)
            assert fallback.group(1) == expected, f"{name}: main.parameters.json falls back to {fallback.group(1)!r}"


def test_azure_yaml_wires_the_hook_and_the_service() -> None:
    azure_yaml = (REPO / "azure.yaml").read_text()
    for script in re.findall(r"run:\s*\./(\S+)", azure_yaml):
        assert (REPO / script).is_file(), f"azure.yaml runs {script}, which does not exist"
    assert "host: function" in azure_yaml
    service = re.search(r"^services:\n\s+([a-z0-9-]+):", azure_yaml, re.MULTILINE)
    assert service, "azure.yaml should declare one service"
    main = (INFRA / "main.bicep").read_text()
    assert f"'azd-service-name': '{service.group(1)}'" in main, "the Function App must carry the azd-service-name tag"


# ---------------------------------------------------------------------------------------------------------------
# 3. Bicep, local settings and code agree
# ---------------------------------------------------------------------------------------------------------------


def test_bicep_local_settings_and_code_agree(code: CodeNames, local_settings: dict[str, Any]) -> None:
    assert code.bindings, "function_app registers no bindings; is the app wired up?"
    problems = consistency_problems(INFRA, code, local_settings, SCRIPTS)
    assert not problems, "infra/, local.settings.example.json and the code disagree:\n" + "\n".join(problems)


def test_speech_key_is_not_set_in_azure() -> None:
    settings = read_bicep(INFRA).app_settings
    assert "SPEECH_KEY" not in settings
    assert not any("key" in name.lower() and "speech" in name.lower() for name in settings), sorted(settings)


def test_app_settings_are_identity_based() -> None:
    settings = read_bicep(INFRA).app_settings
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert "AzureWebJobsStorage" not in settings
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].endswith("Authorization=AAD") or isinstance(
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"], Opaque
    )
    for name, value in settings.items():
        text = str(value)
        assert "AccountKey=" not in text and "SharedAccessSignature=" not in text, f"{name} carries a key"


def test_bicep_queues_and_containers() -> None:
    bicep = read_bicep(INFRA)
    assert sorted(bicep.queues) == ["speech-alerts", "speech-deployments", "speech-deployments-poison"]
    assert "training" in bicep.containers
    assert "deadletter" in bicep.containers, "the Event Grid subscription's dead-letter container is missing"
    assert any(str(c).startswith("app-package-") for c in bicep.containers), "Flex deployment container missing"


# ---------------------------------------------------------------------------------------------------------------
# 4. The checks catch mistakes
# ---------------------------------------------------------------------------------------------------------------


def test_checkov_fails_when_shared_key_access_is_on(infra_copy: Path) -> None:
    _edit(infra_copy / "modules" / "storage.bicep", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true")
    run = run_checkov(infra_copy)
    failed = {(c["check_id"], c["resource"]) for c in run.failed}
    assert ("CKV_CSA_1", "Microsoft.Storage/storageAccounts.storageAccount") in failed, run.output
    assert run.returncode != 0


def test_flex_check_fails_on_refused_site_config_and_scale_limits(infra_copy: Path) -> None:
    _edit(infra_copy / "modules" / "function-app.bicep", "      http20Enabled: true\n", "      ftpsState: 'Disabled'\n")
    _edit(infra_copy / "main.bicep", "@minValue(40)\n@maxValue(1000)", "@minValue(1)\n@maxValue(1000)")
    problems = flex_problems(infra_copy)
    assert any("siteConfig.ftpsState" in p for p in problems), problems
    assert any(p.startswith("main.bicep: maximumInstanceCount must be bounded") for p in problems), problems


def test_secret_check_fails_when_a_secret_reaches_a_plain_module_parameter(infra_copy: Path) -> None:
    # The mistake of issue #12: the secure webhook URL passed among the module's plain app settings.
    _edit(
        infra_copy / "main.bicep",
        "      ALERT_QUEUE: alertQueueName\n",
        "      ALERT_QUEUE: alertQueueName\n      ALERT_WEBHOOK_URL: alertWebhookUrl\n",
    )
    problems = secret_flow_problems(infra_copy)
    assert any("alertWebhookUrl reaches module functionApp's parameter appSettings" in p for p in problems), problems


def test_secret_check_fails_when_the_module_parameter_loses_secure(infra_copy: Path) -> None:
    _edit(infra_copy / "modules" / "function-app.bicep", "@secure()\n", "")
    problems = secret_flow_problems(infra_copy)
    assert any("parameter secretAppSettings, which is not @secure()" in p for p in problems), problems


def test_consistency_fails_when_a_queue_exists_only_in_code(
    infra_copy: Path, code: CodeNames, local_settings: dict[str, Any]
) -> None:
    _edit(infra_copy / "main.bicep", "      '${deployQueueName}-poison'\n", "")
    problems = consistency_problems(infra_copy, code, local_settings, SCRIPTS)
    assert any("'speech-deployments-poison'" in p and "not created by the Bicep" in p for p in problems), problems


def test_consistency_fails_on_speech_key_and_unread_settings(
    infra_copy: Path, code: CodeNames, local_settings: dict[str, Any]
) -> None:
    _edit(
        infra_copy / "main.bicep",
        "      SAS_LIFETIME_HOURS: string(sasLifetimeHours)\n",
        "      SAS_LIFETIME_HOURS: string(sasLifetimeHours)\n      SPEECH_KEY: 'x'\n      UNUSED_FLAG: 'true'\n",
    )
    problems = consistency_problems(infra_copy, code, local_settings, SCRIPTS)
    assert any(p.startswith("SPEECH_KEY must not be set in Azure") for p in problems), problems
    assert any("UNUSED_FLAG" in p and "not read by the code" in p for p in problems), problems


def test_consistency_fails_when_the_hook_drops_dead_lettering(
    tmp_path: Path, code: CodeNames, local_settings: dict[str, Any]
) -> None:
    scripts = tmp_path / "scripts"
    shutil.copytree(SCRIPTS, scripts)
    _edit(scripts / "postdeploy.sh", '  --deadletter-identity-endpoint "$deadletter" \\\n', "")
    problems = consistency_problems(INFRA, code, local_settings, scripts)
    assert "scripts/postdeploy.sh does not dead-letter into EVENTGRID_DEADLETTER_CONTAINER_NAME" in problems, problems


def test_consistency_fails_when_code_reads_an_undeclared_setting(
    code: CodeNames, local_settings: dict[str, Any]
) -> None:
    extended = CodeNames(code.settings | {"NEW_SETTING"}, code.bindings)
    problems = consistency_problems(INFRA, extended, local_settings, SCRIPTS)
    assert "NEW_SETTING is read by the code but is not an app setting in the Bicep" in problems
    assert "NEW_SETTING is read by the code but missing from local.settings.example.json" in problems
