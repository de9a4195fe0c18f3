"""Run one function of an app directory through a fresh worker and print what happened, as JSON.

A subprocess per app: the worker library holds one indexed app per process, as in Azure. Used by test_worker.py
to prove the rig fails where Azure would (an annotation the worker refuses, an output of the wrong type).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from local.runtime import Runtime, Worker, WorkerInitError


def main(app_dir: str, function: str, kind: str) -> dict:
    try:
        worker = Worker(Path(app_dir))
    except WorkerInitError as exc:
        return {"init_error": str(exc)}
    runtime = Runtime(connection_string=os.environ["AzureWebJobsStorage"], worker=worker)
    if kind == "timer":
        result = runtime.fire_timer(function)
    elif kind == "queue":
        result = runtime.deliver_message(function, '{"hello": "world"}')
    elif kind == "http":
        response = runtime.request(function, url="http://127.0.0.1/api/probe?name=x", query={"name": "x"})
        return {"status": response.status, "headers": dict(response.headers), "body": response.body.decode()}
    else:
        raise SystemExit(f"unknown trigger kind {kind}")
    return {
        "ok": result.ok,
        "error": str(result.error) if result.error else None,
        "outputs": result.outputs,
        "logs": [[r.level, r.logger, r.message] for r in result.logs],
        "metadata": {name: fn.raw_bindings for name, fn in worker.metadata.items()},
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4]), default=str))
