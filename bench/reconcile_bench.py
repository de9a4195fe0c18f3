"""Cost of the reconcile and expiry passes over N managed resources (issue #16). Goals: at most ceil(N/100) + 5
Speech list calls and no per-resource GET per pass; the app's own CPU time linear in N (least-squares growth
exponent on log-log <= 1.15); at N = 50,000 under 5 s of app CPU and under 200 MB of peak RSS growth.

What is measured, and how, so that the figures are the app's alone:
- the Speech emulator runs in its own process (bench/scale.py) and Azurite in another (node), so the measured
  process runs nothing but the app: the timers' own `run` with the timers' own planners, its HTTP clients, JSON
  and XML parsing, the planner. Its CPU time is `time.process_time()` (all its threads); the emulator's CPU time
  (psutil) is shown beside it, not included.
- each N gets a fresh emulator and container, seeded in a steady state (bench/scale.py: a zip in the container
  for every dataset, with its state in its metadata), and a fresh process for the app: one warm-up pass, then two
  measured passes of each timer; the one with less CPU is reported (other engineers share this machine). The
  `actions` column is what the planner found to do: 0 when the seeding is the steady state it means to be.
- peak RSS growth: getrusage's high-water mark after the passes minus the RSS before the first one.
- the request budget is off unless --budget: its waits are sleeps (no CPU) that would stretch a pass at N = 50,000
  to a minute of wall time; bench/budget_bench.py measures a throttled pass.

    python -m bench.reconcile_bench [--n 1000,4000,16000,50000] [--no-zips] [--budget]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time

import psutil

from bench.scale import ROOT, CallCounter, EmulatorProcess, cpu_seconds, emit, fit_exponent, results, seed, writes
from local.azurite import Azurite

PASSES = ("reconcile", "expiry")


def measure_in_this_process(budget: bool) -> None:
    """The app's side: run the passes, print the figures as one RESULT line."""
    import resource

    from shared import context
    from shared.flows import timers

    session, counter = CallCounter.session()
    context.CLIENT_OPTIONS = {"session": session} if budget else {"session": session, "rate_limit": None}
    config = context.settings()
    emulator_pid = int(os.environ["BENCH_EMULATOR_PID"])
    parts = {"zips": 0.0, "snapshot": 0.0, "plan": 0.0}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            started = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[name] += time.process_time() - started

        return wrapper

    timers.list_zips_at = timed("zips", timers.list_zips_at)
    timers.snapshot = timed("snapshot", timers.snapshot)
    planners = {"reconcile": timers.poll_plan(config), "expiry": timers.expiry_plan(config)}
    context.speech(config)
    base_rss = psutil.Process().memory_info().rss
    timers.run(config, planners["reconcile"])  # warm-up: connections, lazy imports
    figures: dict = {"passes": {}}
    for name in PASSES:
        best = None
        for _ in range(2):
            for part in parts:
                parts[part] = 0.0
            before, emulator_before = counter.snapshot(), cpu_seconds(emulator_pid)
            cpu, wall = time.process_time(), time.perf_counter()
            result = timers.run(config, timed("plan", planners[name]))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            calls = counter.snapshot() - before
            run = {
                "cpu": cpu,
                "wall": wall,
                "emulator_cpu": cpu_seconds(emulator_pid) - emulator_before,
                "zips_cpu": parts["zips"],
                "speech_lists_cpu": parts["snapshot"] - parts["zips"],
                "plan_cpu": parts["plan"],
                "list": calls["list"],
                "get": calls["get"],
                "write": writes(calls),
                "actions": len(result.actions),
                "skipped": result.skipped,
            }
            best = run if best is None or run["cpu"] < best["cpu"] else best
        figures["passes"][name] = best
    figures["rss_growth"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_rss
    emit(figures)


def run_one(azurite: Azurite, n: int, zips: bool, budget: bool) -> dict:
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(f"bench-{n}")
    container.create_container()
    try:
        with EmulatorProcess() as emulator:
            started = time.perf_counter()
            counts = seed(emulator, container, n, zips=zips)
            seeded = time.perf_counter() - started
            env = {
                **os.environ,
                "AzureWebJobsStorage": azurite.connection_string,
                "SPEECH_ENDPOINT": emulator.url,
                "SPEECH_KEY": emulator.key,
                "TRAINING_CONTAINER": container.container_name,
                "BENCH_EMULATOR_PID": str(emulator.pid),
            }
            args = [sys.executable, "-m", "bench.reconcile_bench", "--measure"] + (["--budget"] if budget else [])
            proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            if proc.returncode:
                raise RuntimeError(f"the measured process failed:\n{proc.stderr[-3000:]}")
            figures = results(iter(proc.stdout.splitlines()))
            emulator_rss = psutil.Process(emulator.pid).memory_info().rss
            figures.update(n=n, counts=counts, seeded=seeded, emulator_rss=emulator_rss)
            return figures
    finally:
        container.delete_container()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="1000,4000,16000,50000", help="comma-separated sizes")
    parser.add_argument("--no-zips", action="store_true", help="datasets whose zips are gone (no blob listing)")
    parser.add_argument("--budget", action="store_true", help="keep the request budget on (slow at large N)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the app's process
    args = parser.parse_args()
    if args.measure:
        measure_in_this_process(args.budget)
        return 0
    sizes = [int(size) for size in args.n.split(",")]
    print(
        f"zips in the container: {'none' if args.no_zips else 'one per dataset'}; "
        f"request budget: {'on' if args.budget else 'off'}; page size 100; app CPU = the measured process alone"
    )
    header = (
        f"{'N':>6} {'pass':<9} {'lists':>5} {'goal':>5} {'GETs':>4} {'writes':>6} {'actions':>7} {'app CPU':>8} "
        f"{'(zips':>6} {'speech':>7} {'plan)':>6} {'wall':>6} {'emulator':>8} {'RSS+':>7}"
    )
    print(header)
    rows = []
    with Azurite() as azurite:
        for n in sizes:
            figures = run_one(azurite, n, not args.no_zips, args.budget)
            rows.append(figures)
            for name in PASSES:
                p = figures["passes"][name]
                print(
                    f"{n:>6} {name:<9} {p['list']:>5} {math.ceil(n / 100) + 5:>5} {p['get']:>4} {p['write']:>6} "
                    f"{p['actions']:>7} {p['cpu']:>7.2f}s {p['zips_cpu']:>5.2f}s {p['speech_lists_cpu']:>6.2f}s "
                    f"{p['plan_cpu']:>5.2f}s {p['wall']:>5.1f}s {p['emulator_cpu']:>7.2f}s "
                    f"{figures['rss_growth'] / 2**20:>5.0f}MB"
                )
            print(
                f"{'':>6} seeded {figures['counts']} in {figures['seeded']:.0f} s; "
                f"emulator RSS {figures['emulator_rss'] / 2**20:.0f} MB",
                flush=True,
            )
    if len(rows) >= 2:
        for name in PASSES:
            exponent = fit_exponent([(r["n"], r["passes"][name]["cpu"]) for r in rows])
            print(f"growth exponent of the {name} pass's app CPU (log-log fit): {exponent:.2f} (goal <= 1.15)")
    per_page = ", ".join(
        f"{r['n']}: {1000 * r['passes']['reconcile']['emulator_cpu'] / max(1, r['passes']['reconcile']['list']):.1f}"
        for r in rows
    )
    print(f"emulator CPU per list page (ms, by N): {per_page}")
    big = rows[-1]
    worst = max(big["passes"][name]["cpu"] for name in PASSES)
    print(
        f"at N={big['n']}: app CPU per pass <= {worst:.2f} s (goal < 5 s at 50,000), peak RSS growth "
        f"{big['rss_growth'] / 2**20:.0f} MB (goal < 200 MB); list calls within ceil(N/100)+5: "
        f"{all(r['passes'][p]['list'] <= math.ceil(r['n'] / 100) + 5 for r in rows for p in PASSES)}; "
        f"per-resource GETs: {sum(r['passes'][p]['get'] for r in rows for p in PASSES)}; actions planned "
        f"(0 in a steady state): {sum(r['passes'][p]['actions'] for r in rows for p in PASSES)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
