"""Does a large body cost the server memory? Eight 100 MB uploads at once against a real uvicorn server.

Starts the app under uvicorn on loopback in a child process (SQLite, no scheduler), then sends eight
concurrent POSTs of 100 MB each to /api/v1/disputes over raw sockets: once declaring the length
(Content-Length) and once chunked (no length). Each client sends until the server answers or closes.
Prints, per run, the answers, how much each client got to send, and the server's resident memory before
and after (VmRSS) and at its peak (VmHWM), from /proc.

    .venv/bin/python bench/body_cap.py
    .venv/bin/python bench/body_cap.py --cap 1000000000     # the same with the cap out of reach, to compare

Linux only (/proc).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
CHUNK = 64 * 1024


def serve(port: int, database: str, cap: int) -> None:
    import uvicorn

    from api.app import Mode, create_app
    from dispute_service.config import Settings
    from dispute_service.database import upgrade

    upgrade(database)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database,
        scheduler_enabled=False,
        max_json_bytes=cap,
        max_form_bytes=cap,
        log_format="json",
    )
    uvicorn.run(
        create_app(settings, mode=Mode.DEMO),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+), so each run's peak is its own.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Upload:
    status: str = "no answer"
    sent: int = 0


def upload(port: int, size: int, chunked: bool, result: Upload) -> None:
    framing = b"transfer-encoding: chunked\r\n" if chunked else b"content-length: %d\r\n" % size
    head = (
        b"POST /api/v1/disputes HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer rubbish\r\n" + framing + b"\r\n"
    )
    block = b"x" * CHUNK
    piece = (b"%x\r\n" % CHUNK + block + b"\r\n") if chunked else block
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        try:
            while result.sent < size:
                sock.sendall(piece)
                result.sent += CHUNK
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: the rest was not wanted
        try:
            first = sock.recv(4096).split(b"\r\n", 1)[0]
            result.status = first.decode(errors="replace") or "closed"
        except OSError as exc:
            result.status = f"{type(exc).__name__}"


def run(pid: int, port: int, size: int, count: int, chunked: bool) -> None:
    reset_peak(pid)
    before = memory(pid)
    results = [Upload() for _ in range(count)]
    threads = [threading.Thread(target=upload, args=(port, size, chunked, r)) for r in results]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    time.sleep(0.5)
    after = memory(pid)
    kind = "chunked" if chunked else "content-length"
    print(f"{count} x {size // MB} MB, {kind}, {elapsed:.2f} s")
    print(f"  answers: {sorted({r.status for r in results})}")
    print(
        f"  sent by each client before the server stopped it: {sorted({r.sent // 1024 for r in results})} kB"
    )
    growth = (after["VmHWM"] - before["VmRSS"]) / 1024
    print(
        f"  server RSS before {before['VmRSS'] / 1024:.1f} MB, after {after['VmRSS'] / 1024:.1f} MB, "
        f"peak {after['VmHWM'] / 1024:.1f} MB (growth at peak {growth:.1f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--cap", type=int, default=65_536, help="the server's body cap, in bytes")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DATABASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.cap)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite:///{tmp}/bench.db"
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), database, "--cap", str(args.cap)]
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.1)
            print(f"cap {args.cap} bytes; server pid {server.pid}")
            for chunked in (False, True):
                run(server.pid, port, args.size_mb * MB, args.count, chunked)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    # This folder comes first on sys.path when a bench runs as a script, and bench/api.py would hide the
    # project's `api` package: take it off before `serve` imports the app.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    main()
