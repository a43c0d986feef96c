"""HTTP load: masked customer reads and reply checks through `appliance serve`, against a do-nothing ceiling.

Goal (issue 8, load): masked customer reads and reply checks, each with its ledger entry, at >= 1,000
requests/s with p99 <= 50 ms on 2 cores; a 10-minute soak with no errors and flat memory; the same
numbers for a plain Flask endpoint that does nothing, as the ceiling.

Setup (not timed): a demo node (`appliance init --demo`: 3,000 customers) in a temporary directory, or
the one in --data-dir (made there the first time, reused after: init takes ~40 s; a reused node's
ledger keeps growing, and the figures with it: docs/benchmarks.md says why). The node is served by
`appliance serve --no-scheduler` (gunicorn, gthread, --workers x server.threads, JSON access log to a
file) on 127.0.0.1; the ceiling is a Flask app with one empty endpoint under the same gunicorn options
(`appliance.serve.gunicorn_options`), started by this script (--serve-ceiling).

Cases, driven by wrk (Debian's) with the Lua scripts beside this file, `-t THREADS -c CONNECTIONS`:
  read    GET /v1/customers/<id> with the demo agent key, ids strided over every demo customer: a
          masked record and one `record.read` ledger entry per request (load_customers.lua)
  check   POST /v1/policy/check-reply with six replies (allowed, blocked; CN and US; retail and
          finance) in turn: a policy decision and one `reply.checked` entry each (load_check_reply.lua)
  ceiling GET /noop on the plain Flask app (wrk_report.lua only)
Each case gets a 3 s warm-up, then DURATION seconds measured; requests/s = completed requests / wrk's
wall time; p50/p99 are wrk's (per request, from send to last byte); errors are non-2xx answers plus
socket errors and timeouts. The node's ledger size is read before and after (GET /healthz): every
answered request must have appended its entry. With --runs N every figure is its median over the N
runs (max: the worst; errors: summed), each run printed beside it; cpu ms is the gunicorn workers' CPU
time (user + system) per answered request.

--soak SECONDS runs reads and checks in turn (load_mixed.lua) for SECONDS instead, sampling the RSS of
each gunicorn worker every 10 s; memory is flat when the least-squares growth of every worker over the
run, after the first minute (imports, caches, pools warming up), is under 5 MB.

    python bench/bench_load.py [--quick] [--duration S] [--runs N] [--connections C] [--threads T]
                               [--data-dir DIR] [--soak SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
GOAL_RPS = 1000.0
GOAL_P99_MS = 50.0
FLAT_MB = 5.0
SAMPLE_SECONDS = 10
WARMUP_SECONDS = 3


@dataclass(frozen=True)
class Result:
    case: str
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    appended: int | None  # ledger entries appended while measuring (None for the ceiling)
    cpu_ms: float  # the workers' CPU time (user + system, every thread) per answered request


# -- servers ------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start ({url}); its log:\n{log.read_text(errors='replace')[-4000:]}")


@contextmanager
def _server(cmd: list[str], env: dict[str, str], health: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(health, proc, log)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _node_env(data_dir: Path, threads: int | None, metrics_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, APPLIANCE_NODE__DATA_DIR=str(data_dir))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # serve sets it, from metrics.multiprocess_dir
    if metrics_dir is not None:
        env["APPLIANCE_METRICS__MULTIPROCESS_DIR"] = str(metrics_dir)
    if threads is not None:
        env["APPLIANCE_SERVER__THREADS"] = str(threads)
    return env


def prepare_node(data_dir: Path) -> None:
    if (data_dir / "node.json").exists():
        return
    print(f"initialising a demo node in {data_dir} (appliance init --demo, not timed) ...", flush=True)
    t0 = time.perf_counter()
    subprocess.run(
        [BIN / "appliance", "init", "--demo"],
        env=_node_env(data_dir, None),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)


def customer_range(data_dir: Path) -> tuple[int, int]:
    """(first id, count) of the node's customers; the demo's ids are contiguous, which the strides need."""
    from appliance.node import Node
    from appliance.settings import load_settings

    settings = load_settings(node={"data_dir": data_dir})
    with Node.open(settings, readonly=True) as node:
        count = node.store.count_customers()
        first = node.store.list_customers(limit=1)[0]["id"]
        last = node.store.list_customers(after_id=first + count - 2, limit=1)
    if count < 1 or not last or last[0]["id"] != first + count - 1:
        raise SystemExit(f"the customers of {data_dir} do not have contiguous ids; use a demo node")
    return int(first), int(count)


# -- the ceiling: a do-nothing Flask app under the same gunicorn options --------------------------------
def serve_ceiling(port: int, workers: int, threads: int | None) -> None:
    from flask import Flask
    from gunicorn.app.base import BaseApplication

    from appliance.serve import gunicorn_options
    from appliance.settings import load_settings

    server: dict[str, Any] = {"host": "127.0.0.1", "port": port, "workers": workers}
    if threads is not None:
        server["threads"] = threads
    options = gunicorn_options(load_settings(server=server))
    app = Flask("ceiling")

    @app.get("/noop")
    def noop() -> tuple[str, int]:
        return "", 200

    class Ceiling(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    Ceiling().run()


# -- wrk ----------------------------------------------------------------------------------------------
def wrk(url: str, script: str, seconds: int, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        script,
        url,
    ]
    out = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, text=True, check=True).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    data: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
    return data


def _ledger_size(base: str) -> int:
    return int(requests.get(base + "/healthz", timeout=60).json()["ledger_size"])


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (all their threads), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        # pid (comm) state ... utime stime: fields 14 and 15, counted after the last ')'.
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(rest[11]) + int(rest[12])
    return total / ticks


def measure(
    case: str,
    base: str,
    path: str,
    script: str,
    args: argparse.Namespace,
    env: dict[str, str],
    workers: list[int],
) -> Result:
    wrk(base + path, script, WARMUP_SECONDS, args, env)
    before = _ledger_size(base) if case != "ceiling" else None
    cpu = _cpu_seconds(workers)
    w = wrk(base + path, script, args.duration, args, env)
    cpu = _cpu_seconds(workers) - cpu
    appended = _ledger_size(base) - before if before is not None else None
    errors = w["status"] + w["connect"] + w["read"] + w["write"] + w["timeout"]
    return Result(
        case,
        w["requests"] / (w["duration_us"] / 1e6),
        w["p50_us"] / 1000,
        w["p90_us"] / 1000,
        w["p99_us"] / 1000,
        w["max_us"] / 1000,
        w["requests"],
        errors,
        appended,
        cpu * 1000 / max(1, w["requests"]),
    )


def _median(results: list[Result]) -> Result:
    """Each figure's median over the runs (the worst max, the fewest entries appended, every error).

    One slow fsync on this VM's disk stalls every request in flight for 100-200 ms; a run that caught
    two of them moves its p99, not the node's. Medians per figure, with each run printed beside them.
    """
    med = statistics.median_low
    appended = [r.appended for r in results if r.appended is not None]
    return Result(
        results[0].case,
        med([r.rps for r in results]),
        med([r.p50_ms for r in results]),
        med([r.p90_ms for r in results]),
        med([r.p99_ms for r in results]),
        max(r.max_ms for r in results),
        sum(r.requests for r in results),
        sum(r.errors for r in results),
        sum(appended) if appended else None,
        med([r.cpu_ms for r in results]),
    )


# -- the soak -----------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses: split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry.name))
    return sorted(kids)


def _memory_mb(pid: int) -> tuple[float, float] | None:
    """(RSS, its anonymous part) in MB. The ledger's tree file is memory-mapped, so RSS grows with the
    log by design (file pages, dropped under memory pressure); a leak shows in the anonymous part."""
    try:
        fields = dict(ln.split(":", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["RssAnon"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def wait_for_workers(master: int, workers: int, metrics_dir: Path | None, timeout: float = 300) -> list[int]:
    """Wait until every worker has loaded the app; returns their pids.

    /healthz answers as soon as one worker is up; load started then would leave every keep-alive
    connection with that worker (gthread workers accept what they can), and half the cores idle. A node
    worker has loaded the app once its metrics files are in the multiprocess directory (the app makes
    them when it is built, after opening the node, whose ledger recovery takes a while on a big log);
    the ceiling's workers load Flask only: a few seconds is plenty.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _children(master)
        if len(kids) == workers:
            if metrics_dir is None:
                time.sleep(3)
                return kids
            if all((metrics_dir / f"gauge_livesum_{pid}.db").exists() for pid in kids):
                time.sleep(1)
                return kids
        time.sleep(0.5)
    raise SystemExit(f"the {workers} workers did not all load the app within {timeout:.0f} s")


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def soak(base: str, workers: list[int], master: int, args: argparse.Namespace, env: dict[str, str]) -> bool:
    print(f"soak: {args.soak} s of reads and reply checks in turn, workers {workers}", flush=True)
    before = _ledger_size(base)
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.soak}s", "--timeout", "10s"]
    cmd += ["-s", "load_mixed.lua", base]
    proc = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    samples: list[tuple[float, list[tuple[float, float] | None]]] = []
    while proc.poll() is None:
        time.sleep(SAMPLE_SECONDS)
        t = time.monotonic() - t0
        mem = [_memory_mb(p) for p in workers]
        samples.append((t, mem))
        shown = ", ".join("gone" if m is None else f"{m[0]:.1f} ({m[1]:.1f} anon)" for m in mem)
        print(f"  t={t:5.0f} s  worker RSS MB: {shown}", flush=True)
    out = proc.stdout.read() if proc.stdout else ""
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        print(f"wrk printed no summary:\n{out}")
        return False
    w = json.loads(line[len("WRK_JSON ") :])
    appended = _ledger_size(base) - before
    errors = w["status"] + w["connect"] + w["read"] + w["write"] + w["timeout"]
    rps = w["requests"] / (w["duration_us"] / 1e6)
    print(
        f"  {w['requests']:,} requests, {rps:,.0f}/s, p50 {w['p50_us'] / 1000:.1f} ms, p99 "
        f"{w['p99_us'] / 1000:.1f} ms, errors {errors}, ledger entries appended {appended:,}"
    )
    settled = [(t, r) for t, r in samples if t >= min(60.0, args.soak * 0.1)]
    flat = True
    same_workers = _children(master) == workers
    for i, pid in enumerate(workers):
        pts = [(t, m[i]) for t, m in settled if m[i] is not None]
        if len(pts) < 3:
            print(f"  worker {pid}: too few samples")
            flat = False
            continue
        xs = [p[0] for p in pts]
        rss, anon = [p[1][0] for p in pts], [p[1][1] for p in pts]
        span = xs[-1] - xs[0]
        rss_growth, anon_growth = _slope(xs, rss) * span, _slope(xs, anon) * span
        flat &= abs(anon_growth) < FLAT_MB
        print(
            f"  worker {pid}: RSS {rss[0]:.1f} -> {rss[-1]:.1f} MB (fitted {rss_growth:+.2f}), anonymous "
            f"{anon[0]:.1f} -> {anon[-1]:.1f} MB (fitted {anon_growth:+.2f}) over {span:.0f} s"
        )
    ok = errors == 0 and flat and same_workers
    print(
        f"  goal: no errors, flat memory (every worker's anonymous memory < {FLAT_MB:g} MB fitted growth "
        f"after the first minute), no worker restarted: {'met' if ok else 'NOT MET'}"
        + ("" if same_workers else " (a worker was replaced during the run)")
    )
    return ok


# -- main ---------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 s per case")
    ap.add_argument("--duration", type=int, default=15, help="seconds measured per case (default 15)")
    ap.add_argument("--runs", type=int, default=1, help="repeat every case; medians are reported")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    ap.add_argument("--server-threads", type=int, default=None, help="threads per worker (server.threads)")
    ap.add_argument("--data-dir", type=Path, default=None, help="demo node to use (made if missing)")
    ap.add_argument("--soak", type=int, default=0, metavar="SECONDS", help="run the soak instead")
    ap.add_argument("--serve-ceiling", type=int, default=None, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_ceiling is not None:
        serve_ceiling(args.serve_ceiling, args.workers, args.server_threads)
        return 0
    if args.quick:
        args.duration = 5
    if shutil.which("wrk") is None:
        print("wrk is not installed: `apt-get install wrk` (make bench does it)")
        return 1

    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        data_dir = args.data_dir.resolve() if args.data_dir else tmp / "node"
        prepare_node(data_dir)
        first, count = customer_range(data_dir)
        token = json.loads((data_dir / "demo-api-keys.json").read_text())["agent"]
        wrk_env = dict(os.environ, BENCH_TOKEN=token, BENCH_FIRST_ID=str(first), BENCH_IDS=str(count))
        print(
            f"load bench: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), gunicorn "
            f"{args.workers} workers x {args.server_threads or 'server.threads'} threads (gthread), wrk -t"
            f"{args.threads} -c{args.connections}, {args.duration} s per case after {WARMUP_SECONDS} s "
            f"warm-up, {count:,} customers, median of {args.runs} run(s)",
            flush=True,
        )
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        serve_cmd = [str(BIN / "appliance"), "serve", "--port", str(port), "--workers", str(args.workers)]
        serve_cmd.append("--no-scheduler")
        node_env = _node_env(data_dir, args.server_threads, tmp / "metrics")
        with _server(serve_cmd, node_env, base + "/healthz", tmp / "serve.log") as proc:
            workers = wait_for_workers(proc.pid, args.workers, tmp / "metrics")
            if args.soak:
                return 0 if soak(base, workers, proc.pid, args, wrk_env) else 1
            results: dict[str, list[Result]] = {"read": [], "check": [], "ceiling": []}
            cport = _free_port()
            ceiling_cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-ceiling", str(cport)]
            ceiling_cmd += ["--workers", str(args.workers)]
            if args.server_threads is not None:
                ceiling_cmd += ["--server-threads", str(args.server_threads)]
            for _ in range(args.runs):
                for case, script in (("read", "load_customers.lua"), ("check", "load_check_reply.lua")):
                    results[case].append(measure(case, base, "/", script, args, wrk_env, workers))
            ceiling_url = f"http://127.0.0.1:{cport}"
            with _server(ceiling_cmd, dict(os.environ), ceiling_url + "/noop", tmp / "ceiling.log") as cproc:
                cworkers = wait_for_workers(cproc.pid, args.workers, None)
                for _ in range(args.runs):
                    results["ceiling"].append(
                        measure("ceiling", ceiling_url, "/noop", "wrk_report.lua", args, wrk_env, cworkers)
                    )
        return report(results, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


LABELS = {
    "read": "GET /v1/customers/<id> (masked read + ledger entry)",
    "check": "POST /v1/policy/check-reply (decision + ledger entry)",
    "ceiling": "ceiling: plain Flask GET /noop, same gunicorn",
}


def report(results: dict[str, list[Result]], args: argparse.Namespace) -> int:
    ceiling = _median(results["ceiling"])
    print(
        f"  {'':54} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'errors':>6} {'ledger+':>8} "
        f"{'/ceil':>6} {'cpu ms':>6}"
    )
    ok = True
    for case in ("read", "check", "ceiling"):
        r = _median(results[case])
        appended = "" if r.appended is None else f"{r.appended:,}"
        print(
            f"  {LABELS[case]:54} {r.rps:>7,.0f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.max_ms:>7.1f} "
            f"{r.errors:>6} {appended:>8} {r.rps / ceiling.rps:>6.2f} {r.cpu_ms:>6.2f}"
        )
        if args.runs > 1:
            print(
                f"  {'':54} runs: {', '.join(f'{x.rps:,.0f}/s p99 {x.p99_ms:.1f} ms' for x in results[case])}"
            )
        if case != "ceiling":
            met = r.rps >= GOAL_RPS and r.p99_ms <= GOAL_P99_MS and r.errors == 0
            # Every answered request appended its entry (the warm-up's stragglers may add a few more).
            recorded = all(x.appended is not None and x.appended >= x.requests for x in results[case])
            ok &= met and recorded
    print(
        f"  goal: >= {GOAL_RPS:,.0f} req/s with p99 <= {GOAL_P99_MS:.0f} ms and no errors, every request's "
        f"ledger entry appended, for reads and checks: {'met' if ok else 'NOT MET'}"
    )
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "load.json").write_text(
        json.dumps(
            {
                "machine": f"{os.cpu_count()} cores, {platform.machine()}, "
                f"Python {platform.python_version()}",
                "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "results": {k: [asdict(r) for r in v] for k, v in results.items()},
            },
            indent=1,
        )
        + "\n"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
