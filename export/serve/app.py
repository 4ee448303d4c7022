"""The offload service's HTTP API (FastAPI): downloads, enrollment jobs, auth, limits, logs.

Routes (every one but ``/v1/health`` needs ``Authorization: Bearer <device token>``):
  GET  /v1/health                          liveness
  GET  /v1/artifacts                       the artifacts served: name, id, files
  GET  /v1/artifacts/{name}/{file}         an artifact's file (ETag, If-None-Match, Range)
  GET  /v1/bundles/{file}                  a ``.pfb`` bundle of the folder (ETag, Range)
  POST /v1/jobs                            train an enrollment (:mod:`export.serve.jobs`)
  GET  /v1/jobs/{job}                      a job's signed reply, to the device that ran it only

Every response is logged as one JSON line (``pocketfit.serve`` logger): request id, device,
tenant, method, path, status, milliseconds, bytes in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from devices.contract import MANIFEST, SIGNATURE
from export.serve.jobs import JobError, Trainer
from export.serve.limits import RateLimiter
from export.serve.tokens import Client, Tokens

LOG = logging.getLogger("pocketfit.serve")
CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Limits:
    """Request size and per-device rate limits."""

    max_request_bytes: int = 4 * 2**20
    rate_per_s: float = 20.0
    burst: int = 40

    def __post_init__(self) -> None:
        if self.max_request_bytes < 1:
            raise ValueError(f"max_request_bytes must be >= 1, got {self.max_request_bytes}.")


class JsonLines(logging.Formatter):
    """One JSON object per record: the message as ``event`` plus the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "event": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, sort_keys=True)


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _etag(path: Path, cache: dict[tuple[str, float, int], str]) -> str:
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    if key not in cache:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        cache[key] = f'"{digest.hexdigest()}"'
    return cache[key]


def create_app(trainer: Trainer, tokens: Tokens, limits: Limits | None = None) -> FastAPI:
    """The service's ASGI app over a :class:`Trainer` and a device registry."""
    limits = limits or Limits()
    rate = RateLimiter(limits.rate_per_s, limits.burst)
    etags: dict[tuple[str, float, int], str] = {}
    app = FastAPI(title="pocketfit offload", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> Response:
        return exc.response

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Any) -> Response:
        request.state.id, request.state.client = secrets.token_hex(6), None
        t0 = time.perf_counter()
        response = await call_next(request)
        client: Client | None = request.state.client
        LOG.info(
            "request",
            extra={
                "fields": {
                    "request": request.state.id,
                    "device": client.device if client else None,
                    "tenant": client.tenant if client else None,
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "ms": round(1e3 * (time.perf_counter() - t0), 2),
                    "bytes_in": int(request.headers.get("content-length") or 0),
                }
            },
        )
        return response

    def authorize(request: Request) -> Client:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        client = tokens.lookup(token.strip()) if scheme.lower() == "bearer" else None
        if client is None:
            raise _Refused(
                _error(
                    401,
                    "a valid device bearer token is required.",
                    **{"WWW-Authenticate": "Bearer"},
                )
            )
        request.state.client = client
        wait = rate.take(client.device)
        if wait > 0:
            raise _Refused(
                _error(
                    429,
                    f"over {limits.rate_per_s:g} requests/s (burst {limits.burst}); retry in {wait:.2f} s.",
                    **{"Retry-After": str(max(1, round(wait)))},
                )
            )
        return client

    async def read_body(request: Request) -> bytes:
        declared = int(request.headers.get("content-length") or 0)
        too_big = _error(
            413, f"request over {limits.max_request_bytes:,} bytes; send fewer samples."
        )
        if declared > limits.max_request_bytes:
            raise _Refused(too_big)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limits.max_request_bytes:
                raise _Refused(too_big)
        return bytes(body)

    def send_file(request: Request, path: Path, media: str) -> Response:
        tag = _etag(path, etags)
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"etag": tag})
        return FileResponse(
            path, media_type=media, headers={"etag": tag, "cache-control": "no-cache"}
        )

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "artifacts": len(trainer.artifacts), "key_id": trainer.key_id.hex()}

    @app.get("/v1/artifacts")
    async def artifacts(request: Request) -> dict[str, Any]:
        authorize(request)
        out = []
        for ident, folder in sorted(trainer.artifacts.items()):
            manifest = json.loads((folder / MANIFEST).read_text())
            out.append(
                {
                    "name": folder.name,
                    "id": ident,
                    "files": [MANIFEST, SIGNATURE, *manifest["files"]],
                }
            )
        return {"artifacts": out}

    @app.get("/v1/artifacts/{name}/{file}")
    async def artifact_file(name: str, file: str, request: Request) -> Response:
        authorize(request)
        folders = {f.name: f for f in trainer.artifacts.values()}
        if name not in folders:
            return _error(404, f"no artifact {name[:64]!r}.")
        manifest = json.loads((folders[name] / MANIFEST).read_text())
        if file not in (MANIFEST, SIGNATURE, *manifest["files"]):
            return _error(404, f"artifact {name!r} has no file {file[:64]!r}.")
        return send_file(request, folders[name] / file, "application/octet-stream")

    @app.get("/v1/bundles/{file}")
    async def bundle(file: str, request: Request) -> Response:
        authorize(request)
        bundles = {p.name: p for p in trainer.root.glob("*.pfb")}
        bundles.update(
            {f"{a.name}.pfb": p for a in trainer.artifacts.values() for p in a.glob("*.pfb")}
        )
        if file not in bundles:
            return _error(
                404,
                f"no bundle {file[:64]!r}; this service has {', '.join(sorted(bundles)) or 'none'}.",
            )
        return send_file(request, bundles[file], "application/octet-stream")

    @app.post("/v1/jobs")
    async def post_job(request: Request) -> Response:
        client = authorize(request)
        body = await read_body(request)
        LOG.info(
            "job_start", extra={"fields": {"request": request.state.id, "device": client.device}}
        )
        try:
            job, reply = await run_in_threadpool(trainer.run, client, body)
        except JobError as err:
            return _error(err.status, str(err))
        return Response(
            reply, media_type="application/json", headers={"location": f"/v1/jobs/{job}"}
        )

    @app.get("/v1/jobs/{job}")
    async def get_job(job: str, request: Request) -> Response:
        client = authorize(request)
        try:
            return Response(trainer.fetch(client, job), media_type="application/json")
        except JobError as err:
            return _error(err.status, str(err))

    return app
