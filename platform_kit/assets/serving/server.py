"""The inference server of a release image: every model of the manifest, loaded at start.

    GET  /                    the release: {"manifest", "md5", "git_sha", "dolt_commit", "models",
                              "endpoints"}
    GET  /health              {"status": "ok", "models": N, "md5", "git_sha"}
    GET  /manifest            {"manifest": {model: version}, "md5": tag, "git_sha", "dolt_commit"}
    GET  /metrics             Prometheus text: requests, errors, texts and latency per model, the
                              requests in flight, and build info (manifest MD5, Git SHA)
    POST /predict/<model>     {"texts": [...]} -> {"model", "version", "predictions": [...]}

Every request writes one JSON line to stdout (time, method, path, model, texts, status,
latency_ms); start, drain and stop are JSON lines too, so a log shipper needs one parser.
SIGTERM (and SIGINT) stop accepting connections, let the requests in flight finish for up to
DRAIN_SECONDS (default 25: under Kubernetes' 30 s grace period; give 'docker stop' '-t 30'), and
exit 0, or 1 when some were still running.

Environment: PORT (8080), MODELS (/models, holding manifest.json and one directory per model),
DRAIN_SECONDS, PLATFORM_KIT_GIT_SHA and PLATFORM_KIT_DOLT_COMMIT (set by the Dockerfile; keys
"git_sha" and "dolt_commit" of manifest.json take precedence).
PLATFORM_KIT_TEST_PREDICT_DELAY (seconds) makes every prediction that slow: tests only.

Standard library and numpy only (see bow.py): a release carries no training dependencies.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlsplit

from bow import BowModel  # type: ignore[import-not-found]  # copied beside it in the image

MAX_TEXTS = 1000
MAX_BODY = 16 << 20
# The model label of requests naming no served model: arbitrary paths must not add label values.
UNKNOWN_MODEL = "(unknown)"
# Seconds: Prometheus clients' defaults, stretched down to a millisecond (bag of words is fast).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TEST_DELAY = "PLATFORM_KIT_TEST_PREDICT_DELAY"
GIT_SHA = "PLATFORM_KIT_GIT_SHA"
DOLT_COMMIT = "PLATFORM_KIT_DOLT_COMMIT"


@dataclass(frozen=True)
class Release:
    manifest: dict[str, str]
    md5: str
    git_sha: str
    dolt_commit: str
    models: dict[str, Any]  # name -> BowModel

    @classmethod
    def load(cls, root: Path, environ: Mapping[str, str]) -> Release:
        """The release under ``root`` (manifest.json and a directory per model)."""
        data = json.loads((root / "manifest.json").read_text())
        manifest = {str(k): str(v) for k, v in data["manifest"].items()}
        return cls(
            manifest=manifest,
            md5=str(data["md5"]),
            # manifest.json first: a context that writes them there spares the ENV build step.
            git_sha=str(data.get("git_sha") or environ.get(GIT_SHA) or "unknown"),
            dolt_commit=str(data.get("dolt_commit") or environ.get(DOLT_COMMIT) or ""),
            models={name: BowModel.load(root / name) for name in manifest},
        )

    def describe(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "md5": self.md5,
            "git_sha": self.git_sha,
            "dolt_commit": self.dolt_commit,
        }


class Metrics:
    """Per-model counters and latency histograms; every method is thread-safe."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._texts: dict[str, int] = {}
        self._counts: dict[str, list[int]] = {}  # model -> per-bucket counts (not cumulative)
        self._sums: dict[str, float] = {}

    def observe(self, model: str, status: int, seconds: float, texts: int | None) -> None:
        slot = next((i for i, b in enumerate(self.buckets) if seconds <= b), len(self.buckets))
        with self._lock:
            key = (model, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            self._texts[model] = self._texts.get(model, 0) + (texts or 0)
            counts = self._counts.setdefault(model, [0] * (len(self.buckets) + 1))
            counts[slot] += 1
            self._sums[model] = self._sums.get(model, 0.0) + seconds

    def render(self, release: Release, in_flight: int) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            requests = sorted(self._requests.items())
            texts = sorted(self._texts.items())
            counts = {m: list(c) for m, c in self._counts.items()}
            sums = dict(self._sums)
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        def sample(name: str, value: float, **labels: str) -> None:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")

        family(
            "platform_kit_build_info",
            "gauge",
            "The release served: manifest MD5 (the image tag), Git SHA and Dolt commit.",
        )
        sample(
            "platform_kit_build_info",
            1,
            manifest_md5=release.md5,
            git_sha=release.git_sha,
            dolt_commit=release.dolt_commit,
        )
        family("platform_kit_models", "gauge", "Models loaded.")
        sample("platform_kit_models", len(release.models))
        family("platform_kit_requests_in_flight", "gauge", "HTTP requests being served now.")
        sample("platform_kit_requests_in_flight", in_flight)
        family(
            "platform_kit_predict_requests_total",
            "counter",
            "Predict requests by model and HTTP status code.",
        )
        for (model, code), n in requests:
            sample("platform_kit_predict_requests_total", n, model=model, code=code)
        family(
            "platform_kit_predict_errors_total",
            "counter",
            "Predict requests answered with a 4xx or 5xx status, by model and code.",
        )
        for (model, code), n in requests:
            if int(code) >= 400:
                sample("platform_kit_predict_errors_total", n, model=model, code=code)
        family("platform_kit_predict_texts_total", "counter", "Texts predicted, by model.")
        for model, n in texts:
            sample("platform_kit_predict_texts_total", n, model=model)
        name = "platform_kit_predict_duration_seconds"
        family(name, "histogram", "Predict request latency, from request line to response sent.")
        for model in sorted(counts):
            cumulative = 0
            for bound, n in zip((*self.buckets, float("inf")), counts[model], strict=True):
                cumulative += n
                sample(f"{name}_bucket", cumulative, model=model, le=_number(bound))
            sample(f"{name}_sum", sums[model], model=model)
            sample(f"{name}_count", cumulative, model=model)
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return str(value) if isinstance(value, int) else repr(float(value))


class Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "platform-kit"
    timeout = 20  # seconds a client may stall mid-request; keeps a drain from waiting on it

    def handle_one_request(self) -> None:
        self.started = time.perf_counter()
        self.status: int | None = None
        self.model: str | None = None
        self.texts: int | None = None
        try:
            super().handle_one_request()
        finally:  # also when the client hung up mid-answer
            if self.status is not None:  # a request was answered, not an idle connection
                self.server.finished(self, time.perf_counter() - self.started)

    def parse_request(self) -> bool:
        self.started = time.perf_counter()  # from the request line, not from the idle wait
        return super().parse_request()

    def send_response(self, code: int, message: str | None = None) -> None:
        self.status = code
        super().send_response(code, message)

    def log_message(self, format: str, *args: Any) -> None:
        return  # the access log is the JSON line of Server.finished

    def log_error(self, format: str, *args: Any) -> None:
        self.server.emit({"event": "error", "message": format % args})

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        release = self.server.release
        if path == "/health":
            return self.reply(
                200,
                {
                    "status": "ok",
                    "models": len(release.models),
                    "md5": release.md5,
                    "git_sha": release.git_sha,
                },
            )
        if path == "/manifest":
            return self.reply(200, release.describe())
        if path == "/":
            endpoints = ["/health", "/manifest", "/metrics", "/predict/<model>"]
            body = {**release.describe(), "models": sorted(release.models), "endpoints": endpoints}
            return self.reply(200, body)
        if path == "/metrics":
            text = self.server.metrics.render(release, self.server.in_flight)
            return self.send(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
        return self.reply(404, {"error": f"no route {path}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        name = path.removeprefix("/predict/")
        release = self.server.release
        if path.startswith("/predict/"):
            self.model = name if name in release.models else UNKNOWN_MODEL
        if self.model is None or self.model == UNKNOWN_MODEL:
            return self.reply(
                404, {"error": f"no model {name!r}", "models": sorted(release.models)}
            )
        try:
            length = int(self.headers.get("Content-Length", 0))
            if length > MAX_BODY:
                return self.reply(413, {"error": f"at most {MAX_BODY} bytes per request"})
            if length < 0:
                raise ValueError
            body = json.loads(self.rfile.read(length))
            texts = body["texts"]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": 'expected JSON {"texts": ["...", ...]}'})
        self.texts = len(texts)
        if len(texts) > MAX_TEXTS:
            return self.reply(413, {"error": f"at most {MAX_TEXTS} texts per request"})
        if self.server.delay:
            time.sleep(self.server.delay)
        try:
            predictions = release.models[name].predict(texts)
        except Exception as exc:  # a broken model must answer 500 (and count), not drop the line
            self.server.emit({"event": "error", "model": name, "message": repr(exc)})
            return self.reply(500, {"error": f"model {name!r} failed to predict"})
        return self.reply(
            200, {"model": name, "version": release.manifest[name], "predictions": predictions}
        )

    def reply(self, status: int, body: dict[str, Any]) -> None:
        self.send(status, json.dumps(body).encode(), "application/json")

    def send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    """A thread per connection, counting the connections in flight so that a stop can drain."""

    block_on_close = False  # drain() waits instead, with a bound

    def __init__(
        self,
        address: tuple[str, int],
        release: Release,
        *,
        log: IO[str] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.release = release
        self.metrics = Metrics()
        self.delay = delay
        self.in_flight = 0
        self._log = log or sys.stdout
        self._log_lock = threading.RLock()  # reentrant: a signal handler may log mid-line
        self._idle = threading.Condition()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Counted here, in the accepting thread, so a drain that starts now already sees it.
        with self._idle:
            self.in_flight += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self.in_flight -= 1
            self._idle.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a bare traceback (a client that hung up, a bug): keep it one line.
        self.emit(
            {
                "event": "error",
                "client": client_address[0],
                "message": repr(sys.exc_info()[1]),
                "traceback": traceback.format_exc(),
            }
        )

    def finished(self, handler: Handler, seconds: float) -> None:
        """Count and log one answered request."""
        if handler.model is not None:
            self.metrics.observe(handler.model, handler.status or 0, seconds, handler.texts)
        self.emit(
            {
                "event": "request",
                "method": handler.command,
                "path": handler.path,
                "model": handler.model,
                "texts": handler.texts,
                "status": handler.status,
                "latency_ms": round(seconds * 1000, 3),
                "client": handler.client_address[0],
            }
        )

    def emit(self, record: dict[str, Any]) -> None:
        """Write one JSON log line."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = json.dumps({"time": stamp, **record}) + "\n"
        with self._log_lock:
            self._log.write(line)
            self._log.flush()

    def drain(self, timeout: float) -> bool:
        """After serve_forever() returned: answer the connections the kernel already queued, stop
        listening, and wait up to ``timeout`` seconds for every request to finish.

        Returns False when some were still running at the deadline.
        """
        self.socket.setblocking(False)
        while True:
            try:
                request, client_address = self.socket.accept()
            except OSError:  # BlockingIOError: none is left
                break
            request.setblocking(True)
            self.process_request(request, client_address)
        self.server_close()
        with self._idle:
            return self._idle.wait_for(lambda: self.in_flight == 0, timeout)


def main() -> int:
    release = Release.load(Path(os.environ.get("MODELS", "/models")), os.environ)
    port = int(os.environ.get("PORT", "8080"))
    drain_seconds = float(os.environ.get("DRAIN_SECONDS", "25"))
    server = Server(("0.0.0.0", port), release, delay=float(os.environ.get(TEST_DELAY) or 0))

    def stop(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        server.emit({"event": "draining", "signal": name, "in_flight": server.in_flight})
        # shutdown() waits for serve_forever(), which runs in this (the main) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)  # PID 1 in a container ignores signals it does not handle
    signal.signal(signal.SIGINT, stop)
    server.emit(
        {"event": "start", "port": port, "models": len(release.models), **release.describe()}
    )
    server.serve_forever()
    drained = server.drain(drain_seconds)
    server.emit({"event": "stopped", "drained": drained, "in_flight": server.in_flight})
    return 0 if drained else 1


if __name__ == "__main__":
    sys.exit(main())
