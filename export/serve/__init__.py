"""The offload service (server side: FastAPI + uvicorn): signed artifacts and bundles to download,
and enrollment training for devices whose budget is too small for the wide scope.

``python -m export serve --artifacts DIR --key SIGNING_KEY --tokens TOKENS`` is :func:`serve`;
the device's client is :mod:`personalize.offload`.
"""

from export.serve.app import JsonLines, Limits, create_app
from export.serve.jobs import JobError, Trainer, find_artifacts
from export.serve.limits import RateLimiter
from export.serve.relay import Relay
from export.serve.server import ServeConfig, build, serve, serve_in_thread
from export.serve.tls import self_signed
from export.serve.tokens import Client, TokenError, Tokens, issue_token, tenant_of

__all__ = [
    "Client",
    "JobError",
    "JsonLines",
    "Limits",
    "RateLimiter",
    "Relay",
    "ServeConfig",
    "TokenError",
    "Tokens",
    "Trainer",
    "build",
    "create_app",
    "find_artifacts",
    "issue_token",
    "self_signed",
    "serve",
    "serve_in_thread",
    "tenant_of",
]
