#!/usr/bin/env python3
"""A stand-in for the Lambda Runtime API, to run a real function binary locally.

Implements what a custom runtime (provided.al2023 `bootstrap`) talks to:

    GET  /2018-06-01/runtime/invocation/next
    POST /2018-06-01/runtime/invocation/<request-id>/response
    POST /2018-06-01/runtime/invocation/<request-id>/error
    POST /2018-06-01/runtime/init/error

Modes:

    smoke  start the binary, hand it one API Gateway v2 event (default
           events/apigw-http-v2-health.json), check it answers 200 with the
           health body and that its stdout log lines are JSON carrying the
           request id. Exit 1 with a reason otherwise.
    init   N cold starts: time from just before spawning the process to the
           moment its first GET /next arrives; print min/median/p90.

Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
from base64 import b64decode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PREFIX = "/2018-06-01/runtime"
REGION = "us-east-1"
ACCOUNT = "123456789012"


class Runtime:
    """State shared by the HTTP handler threads."""

    def __init__(self, function_name: str, timeout_ms: int) -> None:
        self.function_name = function_name
        self.timeout_ms = timeout_ms
        self.events: queue.Queue[bytes] = queue.Queue()
        self.results: queue.Queue[tuple[str, str, bytes]] = queue.Queue()  # (kind, request id, body)
        self.first_next_ns: int | None = None
        self.next_arrived = threading.Event()
        self.release = threading.Event()  # unblocks /next when no event will come

    def reset(self) -> None:
        self.first_next_ns = None
        self.next_arrived.clear()
        self.release.clear()


def make_handler(rt: Runtime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:  # quiet
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_GET(self) -> None:  # noqa: N802
            if self.path != f"{PREFIX}/invocation/next":
                self._reply(404, b'{"errorMessage":"not found"}')
                return
            if rt.first_next_ns is None:
                rt.first_next_ns = time.perf_counter_ns()
                rt.next_arrived.set()
            # Long-poll, as the real API does, until an event comes or we are released.
            while True:
                try:
                    event = rt.events.get(timeout=0.05)
                    break
                except queue.Empty:
                    if rt.release.is_set():
                        self.close_connection = True
                        return
            request_id = str(uuid.uuid4())
            deadline = int(time.time() * 1000) + rt.timeout_ms
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{rt.function_name}"
            trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
            self._reply(
                200,
                event,
                {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": arn,
                    "Lambda-Runtime-Trace-Id": trace,
                },
            )

        def do_POST(self) -> None:  # noqa: N802
            body = self._body()
            parts = self.path[len(PREFIX) :].strip("/").split("/")
            if parts == ["init", "error"]:
                rt.results.put(("init-error", "", body))
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                rt.results.put((parts[2], parts[1], body))
            else:
                self._reply(404, b'{"errorMessage":"not found"}')
                return
            self._reply(202, b'{"status":"OK"}')

    return Handler


def start_server(rt: Runtime) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rt))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def function_env(port: int, function_name: str, memory: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PREMISES_"))}
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory,
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_SESSION_TOKEN": "test",
            "AWS_EC2_METADATA_DISABLED": "true",
            "PREMISES_TABLE": "premises-smoke",
            "PREMISES_ENV": "prod",
            # As template.yaml passes the JwtKeys parameter; prod refuses to start without one.
            "PREMISES_JWT_KEYS": "smoke:smoke-test-signing-key-of-at-least-32-chars",
            "RUST_LOG": os.environ.get("RUST_LOG", "info"),
        }
    )
    return env


def spawn(binary: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [binary], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def collect(stream, into: list[str]) -> threading.Thread:  # noqa: ANN001
    def run() -> None:
        for line in iter(stream.readline, b""):
            into.append(line.decode("utf-8", "replace").rstrip("\n"))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


# ---------------------------------------------------------------------- smoke


class SmokeFailure(Exception):
    pass


def check_response(body: bytes) -> dict:
    try:
        response = json.loads(body)
    except ValueError as e:
        raise SmokeFailure(f"the response is not JSON ({e}): {body[:500]!r}") from e
    if not isinstance(response, dict) or "statusCode" not in response:
        raise SmokeFailure(f"the response is not an API Gateway v2 response (no statusCode): {response}")
    if response["statusCode"] != 200:
        raise SmokeFailure(f"statusCode is {response['statusCode']}, expected 200: {response}")
    raw = response.get("body") or ""
    if response.get("isBase64Encoded"):
        raw = b64decode(raw).decode()
    try:
        health = json.loads(raw)
    except ValueError as e:
        raise SmokeFailure(f"the response body is not JSON: {raw!r}") from e
    if health.get("status") != "healthy" or health.get("service") != "premises":
        raise SmokeFailure(f"unexpected health body: {health}")
    if not isinstance(health.get("version"), str) or not health["version"]:
        raise SmokeFailure(f"the health body has no version: {health}")
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    if not headers.get("content-type", "").startswith("application/json"):
        raise SmokeFailure(f"content-type is {headers.get('content-type')!r}, expected application/json")
    return health


def check_logs(stdout: list[str], request_id: str) -> int:
    lines = [line for line in stdout if line.strip()]
    if not lines:
        raise SmokeFailure("the function wrote no log line to stdout")
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            raise SmokeFailure(f"a stdout log line is not JSON (AWS_LAMBDA_LOG_FORMAT=JSON): {line!r}") from None
    carrying = [line for line in lines if request_id in line]
    if not carrying:
        raise SmokeFailure(f"no log line carries the request id {request_id}:\n" + "\n".join(lines))
    return len(carrying)


def smoke(args: argparse.Namespace) -> int:
    rt = Runtime(args.function_name, timeout_ms=args.timeout * 1000)
    server = start_server(rt)
    event = Path(args.event).read_bytes()
    rt.events.put(event)
    out: list[str] = []
    err: list[str] = []
    started = time.perf_counter()
    proc = spawn(args.binary, function_env(server.server_address[1], args.function_name, args.memory))
    readers = [collect(proc.stdout, out), collect(proc.stderr, err)]
    try:
        try:
            kind, request_id, body = rt.results.get(timeout=args.timeout)
        except queue.Empty:
            raise SmokeFailure(
                f"no response within {args.timeout}s"
                + (f" (the process exited with {proc.returncode})" if proc.poll() is not None else "")
            ) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        if kind != "response":
            raise SmokeFailure(f"the function reported an {kind}: {body.decode(errors='replace')}")
        health = check_response(body)
        # Let the log lines written after the response reach us.
        time.sleep(0.3)
        rt.release.set()
        stop(proc)
        for r in readers:
            r.join(timeout=2)
        carrying = check_logs(out, request_id)
    except SmokeFailure as e:
        rt.release.set()
        stop(proc)
        for r in readers:
            r.join(timeout=2)
        print(f"lambda smoke FAILED ({args.binary}): {e}", file=sys.stderr)
        for name, lines in (("stdout", out), ("stderr", err)):
            if lines:
                print(f"--- function {name} ---", file=sys.stderr)
                print("\n".join(lines[-40:]), file=sys.stderr)
        return 1
    finally:
        server.shutdown()
    print(
        f"lambda smoke ok: {args.function_name} answered 200 {json.dumps(health)} in {elapsed_ms:.0f} ms "
        f"(spawn to response); {len(out)} JSON log line(s), {carrying} with request id {request_id}"
    )
    return 0


# ----------------------------------------------------------------------- init


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def init(args: argparse.Namespace) -> int:
    rt = Runtime(args.function_name, timeout_ms=3000)
    server = start_server(rt)
    env = function_env(server.server_address[1], args.function_name, args.memory)
    samples: list[float] = []
    try:
        for i in range(args.runs):
            rt.reset()
            err: list[str] = []
            t0 = time.perf_counter_ns()
            proc = spawn(args.binary, env)
            reader = collect(proc.stderr, err)
            arrived = rt.next_arrived.wait(timeout=args.timeout)
            rt.release.set()
            stop(proc)
            reader.join(timeout=2)
            if not arrived or rt.first_next_ns is None:
                print(
                    f"init FAILED: run {i + 1}: no GET /next within {args.timeout}s (exit {proc.returncode})\n"
                    + "\n".join(err[-20:]),
                    file=sys.stderr,
                )
                return 1
            samples.append((rt.first_next_ns - t0) / 1e6)
    finally:
        server.shutdown()
    s = sorted(samples)
    result = {
        "runs": len(s),
        "min_ms": round(s[0], 2),
        "median_ms": round(statistics.median(s), 2),
        "p90_ms": round(percentile(s, 90), 2),
        "max_ms": round(s[-1], 2),
    }
    print(
        f"init ({args.function_name}, {len(s)} cold starts, spawn to first GET /next): "
        f"min {result['min_ms']:.2f} ms, median {result['median_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms, "
        f"max {result['max_ms']:.2f} ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result) + "\n")
    return 0


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("smoke", "init"):
        s = sub.add_parser(name)
        s.add_argument("--binary", default=str(root / "target/debug/health"), help="the function binary")
        s.add_argument("--function-name", default="health", help="AWS_LAMBDA_FUNCTION_NAME (the catalog name)")
        s.add_argument("--memory", default="256", help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        s.add_argument("--timeout", type=int, default=30, help="seconds to wait for the function")
    sub.choices["smoke"].add_argument("--event", default=str(root / "events/apigw-http-v2-health.json"))
    sub.choices["init"].add_argument("--runs", type=int, default=25)
    sub.choices["init"].add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    if not os.access(args.binary, os.X_OK):
        print(f"{args.binary} is not an executable; build it first (cargo build -p functions --bin health)", file=sys.stderr)
        return 2
    return smoke(args) if args.mode == "smoke" else init(args)


if __name__ == "__main__":
    sys.exit(main())
