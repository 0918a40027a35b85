"""The inference server of a release image: every model of the manifest, loaded at start.

    GET  /health              {"status": "ok", "models": N}
    GET  /manifest            {"manifest": {model: version}, "md5": tag}
    POST /predict/<model>     {"texts": [...]} -> {"model", "version", "predictions": [...]}

Standard library and numpy only (see bow.py): a release carries no training dependencies.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bow import BowModel  # type: ignore[import-not-found]  # copied beside it in the image

ROOT = Path(os.environ.get("MODELS", "/models"))
RELEASE = json.loads((ROOT / "manifest.json").read_text())
MODELS = {name: BowModel.load(ROOT / name) for name in RELEASE["manifest"]}
MAX_TEXTS = 1000


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self.path == "/health":
            return self.reply(200, {"status": "ok", "models": len(MODELS)})
        if self.path == "/manifest":
            return self.reply(200, RELEASE)
        return self.reply(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        name = self.path.removeprefix("/predict/")
        if not self.path.startswith("/predict/") or name not in MODELS:
            return self.reply(404, {"error": f"no model {name!r}", "models": sorted(MODELS)})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            texts = body["texts"]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": 'expected JSON {"texts": ["...", ...]}'})
        if len(texts) > MAX_TEXTS:
            return self.reply(413, {"error": f"at most {MAX_TEXTS} texts per request"})
        predictions = MODELS[name].predict(texts)
        return self.reply(
            200, {"model": name, "version": RELEASE["manifest"][name], "predictions": predictions}
        )

    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"serving {len(MODELS)} models, release {RELEASE['md5']}, on :{port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
