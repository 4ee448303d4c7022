"""The ``python -m personalize`` commands, as functions over :class:`personalize.Device`.

python -m personalize enroll   --artifact DIR --store DIR --key PUB --user NAME IMAGE...
    [--profile P] [--budget BYTES] [--scope S | --train | --no-train] [--target-far F] [--no-adapt]
    [--minutiae] [--dpi N] [--json]
python -m personalize verify   --artifact DIR --store DIR --key PUB --user NAME IMAGE
    [--no-adapt] [--dpi N] [--json]
python -m personalize identify --artifact DIR --store DIR --key PUB IMAGE [--dpi N] [--json]
python -m personalize list     --store DIR
python -m personalize remove   --store DIR --user NAME
python -m personalize install  --bundle X.pfb --artifact DIR --key PUB [--json]
python -m personalize migrate  --store DIR             (a store of format 1 or 2, once)
Every command takes ``--keys KEYDIR``: the folder of the store's key and rollback counters
(default ``$POCKETFIT_KEYS`` or ``~/.config/pocketfit/keys``; never inside the store).

Continual personalization (:mod:`personalize.continual`) is on for ``enroll`` and ``verify``: the
enrollment captures' embeddings are kept in an encrypted buffer, and an accepted capture well
above the threshold re-trains the user's head (at most a few times a day). ``--no-adapt`` turns
it off: ``enroll`` keeps no buffer, ``verify`` never changes the record.

Images are image files (PNG, JPEG, PGM, TIFF, BMP) or ``.npy`` arrays (one image or a batch).
Fingerprint artifacts take 500 dpi captures; ``--dpi N`` (enroll, verify, identify) names another
sensor's resolution, and its captures are resampled to 500 dpi first (the Device's
``sensor_dpi``, :func:`devices.preprocess.to_sensor_dpi`). ``enroll --minutiae`` fuses the
minutiae score with the embedding's (:mod:`personalize.fusion`; an artifact exported with
``--minutiae``); verify and identify score every record as it was enrolled.
Exit codes: 0 done / accepted / identified; 1 rejected / nobody identified; 2 refused input or
usage error (the message says why).
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import math
import sys
from typing import Any

from devices.preprocess import SENSOR_DPI, PreprocessError, check_dpi
from personalize.continual import ContinualConfig, forget
from personalize.device import DEFAULT_FAR, NO_TRAINING, Device
from personalize.errors import PersonalizeError, SensorDpiError
from personalize.head import default_match
from personalize.images import read_all, read_images
from personalize.install import install
from personalize.migrate import migrate_store
from personalize.store import RecordStore

OK, REJECTED, ERROR = 0, 1, 2
_FUSED = dataclasses.replace(default_match("fingerprint"), minutiae=True)  # enroll --minutiae


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m personalize", description="On-device enrollment.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(cmd: argparse.ArgumentParser, *, artifact: bool = True) -> None:
        cmd.add_argument("--store", required=True, help="directory of the encrypted user records")
        cmd.add_argument("--keys", help="folder of the store's key (default: the per-user one)")
        if artifact:
            cmd.add_argument("--artifact", required=True, help="the artifact directory")
            cmd.add_argument("--key", required=True, help="the publisher's public key (PEM)")
            cmd.add_argument("--profile", default="host", help="device profile (default host)")
            cmd.add_argument("--budget", type=int, help="memory budget in bytes (default: profile)")
            cmd.add_argument("--threads", type=int, default=1, help="interpreter threads")
            cmd.add_argument(
                "--dpi",
                type=float,
                help=f"the fingerprint sensor's resolution (default {SENSOR_DPI}, the artifact's); "
                "captures at another are resampled to it",
            )
        else:
            cmd.add_argument("--artifact", help="ignored: the store is read without the model")
        cmd.add_argument("--json", action="store_true", help="machine-readable output")

    enroll = sub.add_parser("enroll", help="enroll a user from a few images")
    common(enroll)
    enroll.add_argument("--user", required=True)
    training = enroll.add_mutually_exclusive_group()
    training.add_argument("--scope", help="force a training scope (SGD; default: the modality's)")
    training.add_argument(
        "--train",
        action="store_true",
        help="SGD in the widest scope that fits the budget, even where the artifact's modality "
        "imprints by default (faces and prints: chosen on development people)",
    )
    training.add_argument("--no-train", action="store_true", help="imprinting only, no SGD")
    enroll.add_argument("--target-far", type=float, default=DEFAULT_FAR)
    enroll.add_argument(
        "--minutiae",
        action="store_true",
        help="fingerprints: add the minutiae score to the embedding's (the artifact must ship "
        "its background prints: python -m export build --minutiae); the record keeps the "
        "owner's prints, and verify and identify score it so",
    )
    enroll.add_argument("images", nargs="+")
    adapt_help = (
        "continual personalization: accepted captures well above the threshold re-train the "
        "user's head (default on; --no-adapt: the record never changes after enrollment)"
    )
    enroll.add_argument(
        "--adapt", action=argparse.BooleanOptionalAction, default=True, help=adapt_help
    )
    verify = sub.add_parser("verify", help="is this image the user?")
    common(verify)
    verify.add_argument("--user", required=True)
    verify.add_argument("images", nargs=1)
    verify.add_argument(
        "--adapt", action=argparse.BooleanOptionalAction, default=True, help=adapt_help
    )
    ident = sub.add_parser("identify", help="which enrolled user is this image?")
    common(ident)
    ident.add_argument("images", nargs=1)
    ls = sub.add_parser("list", help="enrolled users")
    common(ls, artifact=False)
    rm = sub.add_parser("remove", help="delete a user's record")
    common(rm, artifact=False)
    rm.add_argument("--user", required=True)
    inst = sub.add_parser("install", help="install an artifact from its signed download bundle")
    inst.add_argument("--bundle", required=True, help="the download (.pfb)")
    inst.add_argument("--artifact", required=True, help="the artifact directory to write")
    inst.add_argument("--key", required=True, help="the publisher's public key (PEM)")
    inst.add_argument("--json", action="store_true", help="machine-readable output")
    mig = sub.add_parser(
        "migrate",
        help="migrate an older store: format 1 (key out, hashed names), format-2 records (to 3)",
    )
    common(mig, artifact=False)
    return p


def _finite(data: Any) -> Any:
    """``data`` with every non-finite float as None: JSON has no Infinity or NaN."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def _out(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(_finite(data), sort_keys=True, allow_nan=False) if args.json else text)


def _message(err: Exception) -> str:
    """The one-line message of a refusal, in the CLI's terms (its options, not the API's)."""
    if isinstance(err, SensorDpiError):
        return (
            f"user {err.user!r} was enrolled from captures at {err.enrolled:g} dpi; these are "
            f"taken as {err.given:g} dpi (--dpi), so the owner's captures would be scaled "
            f"wrongly. Give --dpi {err.enrolled:g}, or enroll again."
        )
    if isinstance(err, OSError) and err.errno == errno.EROFS:
        return (
            f"{err} (the store is on read-only media: verify --no-adapt, identify and list read "
            "it without writing)"
        )
    return str(err)


def _warn(skipped: list[str] | list[PersonalizeError]) -> None:
    """One line on stderr per record a command could not read or score, and went on without."""
    for err in skipped:
        print(
            f"warning: skipped: {err if isinstance(err, str) else _message(err)}", file=sys.stderr
        )


def _dpi(args: argparse.Namespace) -> float | None:
    """``--dpi``, checked here so that its refusal names the option."""
    if args.dpi is None:
        return None
    try:
        return check_dpi(args.dpi)
    except PreprocessError as err:
        raise PersonalizeError(f"--dpi {args.dpi:g}: {err}") from None


def _read_only(args: argparse.Namespace) -> bool:
    """Whether the command only reads the store (it is then never created nor written)."""
    return args.command == "identify" or (args.command == "verify" and not args.adapt)


def _device(args: argparse.Namespace) -> Device:
    return Device(
        args.artifact,
        args.store,
        profile=args.profile,
        budget=args.budget,
        trusted_key=args.key,
        num_threads=args.threads,
        keys=args.keys,
        continual=ContinualConfig() if getattr(args, "adapt", False) else None,
        sensor_dpi=_dpi(args),
        # only a fingerprint artifact ships the fusion; any other is refused with the reason
        match=_FUSED if getattr(args, "minutiae", False) else None,
        read_only=_read_only(args),
    )


def _one_image(args: argparse.Namespace) -> Any:
    images = read_images(args.images[0])
    if len(images) != 1:
        raise PersonalizeError(f"{args.images[0]}: holds {len(images)} images; give one.")
    return images[0]


def run(args: argparse.Namespace) -> int:
    if args.command == "list":
        users, unreadable = RecordStore(args.store, keys=args.keys, read_only=True).listing()
        _warn(unreadable)
        _out(args, {"users": users}, "\n".join(users) if users else "(no users enrolled)")
        return OK
    if args.command == "install":
        done = install(args.bundle, args.artifact, args.key)
        sizes = ", ".join(f"{n} {b:,} B" for n, b in done["files"].items())
        _out(
            args,
            done,
            f"installed {done['artifact']} from {done['bundle_bytes']:,} B: {sizes}",
        )
        return OK
    if args.command == "remove":
        store = RecordStore(args.store, create=False, keys=args.keys)
        store.remove(args.user)
        forget(store, args.user)  # its continual buffer too
        _out(args, {"removed": args.user}, f"removed {args.user}")
        return OK
    if args.command == "migrate":
        count = migrate_store(args.store, keys=args.keys)
        said = f"migrated {count} record(s) of {args.store}"
        _out(
            args, {"migrated": count}, said if count else f"{args.store} is current: nothing to do"
        )
        return OK
    dev = _device(args)
    if args.command == "enroll":
        report = dev.enroll(
            args.user,
            read_all(args.images),
            # None: the artifact modality's default (personalize.head.DEFAULT_MATCH)
            train=False if args.no_train else (True if args.train else None),
            scope=NO_TRAINING if args.no_train else args.scope,
            target_far=args.target_far,
        )
        measured = report.measured_peak_bytes
        replaced = " (its previous record replaced)" if report.replaced else ""
        _out(
            args,
            report.to_dict(),
            (
                f"enrolled {report.user}{replaced}: {report.samples} samples, scope "
                f"{report.scope}, "
                f"{report.steps} steps (loss {report.initial_loss} -> {report.final_loss}), "
                f"threshold {report.threshold:.4f} for FAR {report.target_far:g} "
                f"({report.threshold_method}); embed {report.embed_ms:.1f} ms, train "
                f"{report.train_ms:.1f} ms; memory predicted {report.predicted_peak_bytes:,} B, "
                f"measured {'n/a' if measured is None else f'{measured:,} B'}, budget "
                f"{report.budget_bytes:,} B"
            ),
        )
        return OK
    if args.command == "verify":
        d = dev.verify(args.user, _one_image(args))
        adapted = dev.continual.last.outcome if dev.continual is not None else "off"
        _out(
            args,
            {**d._asdict(), "adapt": adapted},
            (
                f"{'ACCEPT' if d.accept else 'REJECT'} {args.user}: score {d.score:.4f}, "
                f"threshold {d.threshold:.4f}; continual: {adapted}"
            ),
        )
        return OK if d.accept else REJECTED
    user, score, skipped = dev.identification(_one_image(args))
    _warn(skipped)
    best = f"best score {score:.4f}" if math.isfinite(score) else "no record scored"
    _out(
        args,
        {"user": user, "score": score},
        f"{user}: score {score:.4f}" if user else f"nobody ({best})",
    )
    return OK if user else REJECTED


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except (PersonalizeError, ValueError, OSError) as err:  # ArtifactError, TrustError too
        print(f"error: {_message(err)}", file=sys.stderr)
        return ERROR
