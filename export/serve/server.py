"""Running the offload service: blocking (the CLI) or in a thread on a free port (tests, benches)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from export.bundle import load_private_key, load_public_key
from export.serve.app import LOG, JsonLines, Limits, create_app
from export.serve.jobs import Trainer
from export.serve.tokens import Tokens

STARTUP_S = 30.0


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """What ``python -m export serve`` takes.

    Attributes:
      artifacts: folder of artifact directories (and ``.pfb`` bundles) to serve.
      key: the service's Ed25519 private key (0600): signs the training replies.
      tokens: the device tokens file (:mod:`export.serve.tokens`).
      artifact_key: the publisher's public key the artifacts verify against; default the
        public half of ``key`` (the service is the publisher).
      host, port: where to listen (port 0: a free one).
      tls_cert, tls_key: serve HTTPS with this certificate (PEM).
    """

    artifacts: str | os.PathLike[str]
    key: str | os.PathLike[str]
    tokens: str | os.PathLike[str]
    artifact_key: str | os.PathLike[str] | None = None
    host: str = "127.0.0.1"
    port: int = 8443
    tls_cert: str | os.PathLike[str] | None = None
    tls_key: str | os.PathLike[str] | None = None
    limits: Limits = dataclasses.field(default_factory=Limits)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def _log_to_stderr() -> None:
    if not any(getattr(h, "_pocketfit", False) for h in LOG.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLines())
        handler._pocketfit = True  # type: ignore[attr-defined]
        LOG.addHandler(handler)
        LOG.setLevel(logging.INFO)
        LOG.propagate = False


def _check_tls(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> None:
    """Loads the certificate and its key as the server will, so that a bad pair is refused
    before the service says it is listening (uvicorn loads them only once serving)."""
    for what, path in (("--tls-cert", cert), ("--tls-key", key)):
        if Path(path).is_dir():
            raise ValueError(f"{what} {path} is a directory; give a PEM file.")
        if not Path(path).is_file():
            raise ValueError(f"{what} {path} not found.")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as err:
        why = (
            "the key is not the certificate's"
            if err.reason == "KEY_VALUES_MISMATCH"
            else "not a PEM certificate and its private key"
        )
        raise ValueError(f"TLS certificate {cert} with key {key}: {why}.") from None
    except OSError as err:
        raise ValueError(f"TLS certificate {cert} with key {key}: {err.strerror}.") from None


def build(config: ServeConfig) -> tuple[Any, Trainer]:
    """The app and its trainer (TLS files, keys, tokens and artifacts read and checked)."""
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ValueError("TLS needs both --tls-cert and --tls-key.")
    if config.tls_cert and config.tls_key:
        _check_tls(config.tls_cert, config.tls_key)
    private = load_private_key(config.key)
    public = load_public_key(config.artifact_key) if config.artifact_key else private.public_key()
    trainer = Trainer(config.artifacts, private, public)
    if not trainer.artifacts:
        raise ValueError(f"{config.artifacts}: no artifact directories (*/manifest.json) to serve.")
    return create_app(trainer, Tokens(config.tokens), config.limits), trainer


def _uvicorn(app: Any, config: ServeConfig) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            ssl_certfile=None if config.tls_cert is None else str(config.tls_cert),
            ssl_keyfile=None if config.tls_key is None else str(config.tls_key),
            timeout_keep_alive=5,
            backlog=1024,
        )
    )


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def serve(config: ServeConfig, *, ready: Any = None) -> None:
    """Serves until interrupted (the CLI); prints ``serving URL`` once listening."""
    _log_to_stderr()
    app, trainer = build(config)
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    server = _uvicorn(app, config)
    url = f"{config.scheme}://{config.host}:{port}"
    LOG.info(
        "listening",
        extra={
            "fields": {
                "url": url,
                "key_id": trainer.key_id.hex(),
                "artifacts": sorted(trainer.artifacts),
            }
        },
    )
    print(f"serving {url}", flush=True)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        trainer.close()


@contextlib.contextmanager
def serve_in_thread(config: ServeConfig) -> Iterator[str]:
    """The service in a background thread of this process; yields its URL, stops on exit."""
    _log_to_stderr()
    app, trainer = build(config)
    sock = _bind(config.host, config.port)
    server = _uvicorn(app, config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])),
        name="pocketfit-serve",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the offload service did not start within {STARTUP_S:g} s.")
        time.sleep(0.01)
    try:
        yield f"{config.scheme}://{config.host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_S)
        sock.close()
        trainer.close()
