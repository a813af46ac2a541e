"""How long `dispute-service serve` takes from launch to its first 200 from /readyz, and what it imports.

Launches the real console script (`.venv/bin/dispute-service serve`, a strict start: secrets, loopback mail
and an http link base on loopback) in a fresh temporary folder, against a SQLite file that a first
`dispute-service migrate` prepared, and polls `GET /readyz` every 5 ms until it answers 200 or the time
limit passes. Each start is timed from just before the process is launched, so Python's own start, every
import, the settings, the app, the migration check, uvicorn and the lifespan (engine, scheduler) all count.
Three kinds of start, each run several times:

- `--no-migrate`: the database is already migrated (how a replica starts after a deploy's migration step);
- `migrate`: the default start, whose migration check finds the database up to date;
- `migrate, empty database`: the default start on a new database, every migration applied.

For each: the median, fastest and slowest seconds to ready, the median CPU seconds the server had used by then
(user and system), its resident memory (VmRSS) when it first answered, and the time of the first real
request after it (an authenticated `GET /api/v1/disputes`), which pays for whatever the start left to be
imported on first use.

    .venv/bin/python bench/startup.py
    .venv/bin/python bench/startup.py --runs 9
    .venv/bin/python bench/startup.py --importtime          # also: what a --no-migrate start imports
    .venv/bin/python bench/startup.py --compare ../main/.venv/bin/dispute-service   # against another install

Linux only (/proc). Other work on the machine slows every figure: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
CLI = str(BIN / "dispute-service")
SECRET = "bench-startup-secret-0123456789abcdefghijklmnop"
READER = "iro@example.gov.uk"
POLL_SECONDS = 0.005


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def environment(database: Path) -> dict[str, str]:
    """The machine's environment without any DISPUTES_* setting, then the bench's own: a strict start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env.update(
        DISPUTES_DATABASE_URL=f"sqlite:///{database}",
        DISPUTES_JWT_SECRET=SECRET,
        DISPUTES_LINK_SECRET=SECRET,
        DISPUTES_AUDIT_KEY=SECRET,
        DISPUTES_PUBLIC_BASE_URL="http://127.0.0.1:8000",
        DISPUTES_SMTP_HOST="127.0.0.1",
        DISPUTES_LOG_FORMAT="json",
    )
    return env


def prepare(folder: Path) -> tuple[dict[str, str], str]:
    """A migrated database with one IRO in the directory, and a token for that IRO."""
    env = environment(folder / "disputes.db")
    subprocess.run([CLI, "migrate"], cwd=folder, env=env, check=True, capture_output=True)
    people = folder / "people.csv"
    people.write_text(f"name,email,roles\nBench Reader,{READER},iro\n", encoding="utf-8")
    subprocess.run(
        [CLI, "people", "import", str(people)], cwd=folder, env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [CLI, "token", READER], cwd=folder, env=env, check=True, capture_output=True, text=True
    )
    return env, out.stdout.split()[-1]


def get(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far: less shaken than wall time by other work on the
    machine, as it counts only what the process itself ran."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Start:
    ready: float
    cpu: float
    rss_kib: int
    first_request: float | None
    stderr: str


def start(
    cli: str,
    folder: Path,
    env: dict[str, str],
    args: list[str],
    token: str | None,
    limit: float,
    importtime: bool = False,
) -> Start:
    port = free_port()
    if importtime:
        env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    log = folder / "server.log"
    with log.open("w") as err:
        began = time.perf_counter()
        process = subprocess.Popen(
            [cli, "serve", "--port", str(port), *args], cwd=folder, env=env, stdout=err, stderr=err
        )
        try:
            ready = None
            while time.perf_counter() - began < limit:
                if process.poll() is not None:
                    raise SystemExit(
                        f"the server stopped (exit {process.returncode}):\n{log.read_text()[-3000:]}"
                    )
                try:
                    if get(port, "/readyz") == 200:
                        ready = time.perf_counter() - began
                        break
                except OSError:
                    pass
                time.sleep(POLL_SECONDS)
            if ready is None:
                raise SystemExit(f"not ready within {limit} s:\n{log.read_text()[-3000:]}")
            cpu, rss = cpu_seconds(process.pid), resident_kib(process.pid)
            first = None
            if token is not None:
                t = time.perf_counter()
                status = get(port, "/api/v1/disputes", {"Authorization": f"Bearer {token}"})
                first = time.perf_counter() - t
                if status != 200:
                    raise SystemExit(f"the first request got {status}:\n{log.read_text()[-3000:]}")
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return Start(ready, cpu, rss, first, log.read_text())


def import_costs(stderr: str, top: int) -> None:
    """From Python's -X importtime lines: the total, and the costliest packages, each the sum of its own
    modules' times (a package's imports of other packages count for those)."""
    own: Counter[str] = Counter()
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        own[name.strip().split(".")[0]] += int(self_us)
        total += int(self_us)
    print(f"\nimports until ready: {total / 1e6:.3f} s under -X importtime (which slows them), by package:")
    for package, us in own.most_common(top):
        print(f"  {us / 1000:8.1f} ms  {package}")


def summary(name: str, starts: list[Start]) -> None:
    ready = [s.ready for s in starts]
    cpu = statistics.median(s.cpu for s in starts)
    rss = statistics.median(s.rss_kib for s in starts) / 1024
    firsts = [s.first_request for s in starts if s.first_request is not None]
    first = f"{statistics.median(firsts) * 1000:7.0f} ms" if firsts else "       -  "
    seconds = f"{statistics.median(ready):6.2f} s {min(ready):6.2f} s {max(ready):6.2f} s {cpu:6.2f} s"
    print(f"{name:<34} {seconds} {rss:6.0f} MiB {first}", flush=True)


KINDS = ("--no-migrate", "migrate (up to date)", "migrate, empty database")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts of each kind (default 5)")
    parser.add_argument("--limit", type=float, default=30.0, help="seconds a start may take (default 30)")
    parser.add_argument(
        "--importtime", action="store_true", help="also list what a --no-migrate start imports"
    )
    parser.add_argument("--top", type=int, default=25, help="packages listed with --importtime (default 25)")
    parser.add_argument(
        "--compare",
        metavar="PATH",
        help="another install's dispute-service (another checkout's .venv/bin/dispute-service, with the same "
        "migrations), started in turn with this one, so that both meet the same load",
    )
    args = parser.parse_args()
    installs = {"": CLI} if args.compare is None else {"this: ": CLI, "other: ": args.compare}

    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        folder = Path(tmp)
        env, token = prepare(folder)
        print(f"{os.cpu_count()} cores; {args.runs} starts of each kind; strict, SQLite file, scheduler on")
        heads = ("median", "fastest", "slowest", "CPU", "RSS", "1st request")
        print(f"{'start':<34} " + " ".join(f"{h:>8}" for h in heads[:4]) + f" {heads[4]:>10} {heads[5]:>10}")
        # One start of each install not counted: it writes the bytecode caches of the project's own modules.
        for cli in installs.values():
            start(cli, folder, env, ["--no-migrate"], None, args.limit)
        # The kinds and installs take turns, so a burst of other work on the machine slows each alike.
        results: dict[tuple[str, str], list[Start]] = {(i, k): [] for i in installs for k in KINDS}
        for run in range(args.runs):
            for install, cli in installs.items():
                results[(install, KINDS[0])].append(
                    start(cli, folder, env, ["--no-migrate"], token, args.limit)
                )
                results[(install, KINDS[1])].append(start(cli, folder, env, [], token, args.limit))
                empty = folder / f"empty-{len(install)}-{run}.db"
                empty_env = {**env, "DISPUTES_DATABASE_URL": f"sqlite:///{empty}"}
                results[(install, KINDS[2])].append(start(cli, folder, empty_env, [], None, args.limit))
        for (install, kind), starts in results.items():
            summary(install + kind, starts)
        if args.importtime:
            imports = start(CLI, folder, env, ["--no-migrate"], None, args.limit, importtime=True)
            import_costs(imports.stderr, args.top)


if __name__ == "__main__":
    main()
