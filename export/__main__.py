"""``python -m export``: argument parsing only; the work is in the library.

python -m export inspect BUNDLE --key PUBLIC.pem [--json]
python -m export evaluate BUNDLE --dataset mnist --key PUBLIC.pem [--json]
python -m export keygen [--private ~/.config/pocketfit/signing.key] --public DIR/signing.pub
python -m export rekey PATH... --old-key OLD.pub [--key NEW_PRIVATE | --new-key] [--public P] [--dry-run]
python -m export build --backbone MODEL_DIR --out DIR [--key K | --new-key] [--bundle B.pfb] [--scope head|head_biases|last_block ...] [--sensor-captures DIR] [--minutiae]
python -m export serve --artifacts DIR --key SIGNING_KEY --tokens TOKENS [--host H --port N --tls-cert C --tls-key K]
python -m export serve --tokens TOKENS --issue DEVICE --tenant TENANT   (prints the device's token once)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from devices.cli_args import at_least, port
from export.bundle import (
    DEFAULT_PRIVATE_KEY,
    BundleError,
    generate_key,
    key_id,
    read_bundle,
    render,
    summary,
)
from export.evaluate import DATASETS, evaluate_bundle

KEY_HELP = "the trusted public key (PEM) the bundle must be signed with (a key beside it is not)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="verify a bundle and print its per-layer size table")
    inspect.add_argument("bundle", help="a .pfb file")
    inspect.add_argument("--key", required=True, help=KEY_HELP)
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate = sub.add_parser("evaluate", help="verify, decode and measure the test error")
    evaluate.add_argument("bundle", help="a .pfb file")
    evaluate.add_argument("--dataset", required=True, choices=DATASETS)
    evaluate.add_argument("--key", required=True, help=KEY_HELP)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    keygen = sub.add_parser("keygen", help="create an Ed25519 signing key pair")
    keygen.add_argument(
        "--private",
        default=str(DEFAULT_PRIVATE_KEY),
        help="private key file, kept outside any repository (default: %(default)s)",
    )
    keygen.add_argument("--public", required=True, help="public key file to publish with bundles")
    rekey = sub.add_parser(
        "rekey",
        help="sign artifacts and bundles again with a new key, after checking them with the old one",
    )
    rekey.add_argument("paths", nargs="+", help="artifact directories, .pfb files or folders")
    rekey.add_argument(
        "--old-key", required=True, help="the public key (PEM) that signed them until now"
    )
    rekey.add_argument(
        "--key",
        default=str(DEFAULT_PRIVATE_KEY),
        help="the new Ed25519 private key (mode 0600) (default: %(default)s)",
    )
    rekey.add_argument("--new-key", action="store_true", help="create --key when it does not exist")
    rekey.add_argument(
        "--public",
        action="append",
        default=[],
        metavar="FILE",
        help="write the new key's public half here (repeatable), e.g. the "
        "signing.pub beside the artifacts",
    )
    rekey.add_argument("--dry-run", action="store_true", help="verify and report, write nothing")
    build = sub.add_parser("build", help="a trained backbone -> a signed LiteRT artifact directory")
    build.add_argument("--backbone", required=True, help="model directory (pretrain.save_model)")
    build.add_argument("--out", required=True, help="artifact directory to write (replaced)")
    build.add_argument("--bundle", help="the backbone's .pfb, shipped as the OTA form")
    build.add_argument(
        "--bundle-key",
        help="public key (PEM) the bundle is signed with; default: the public half of --key",
    )
    build.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="SCOPE",
        help="training scope to export besides 'head' (repeatable): head, head_biases, last_block",
    )
    build.add_argument(
        "--key",
        default=str(DEFAULT_PRIVATE_KEY),
        help="Ed25519 private key (mode 0600) that signs the manifest (default: %(default)s)",
    )
    build.add_argument(
        "--new-key",
        action="store_true",
        help="create --key (mode 0600) when it does not exist; never done without this flag",
    )
    build.add_argument("--public", help="also write the key's public half here (signing.pub)")
    build.add_argument("--classes", type=int, default=8, help="head class slots (default: 8)")
    build.add_argument("--float", action="store_true", help="float32 embed instead of int8")
    whiten = build.add_mutually_exclusive_group()
    whiten.add_argument(
        "--whiten",
        dest="whiten",
        action="store_true",
        default=None,
        help="whiten the embedding (default: as chosen for the training dataset on its "
        "development people, see export.artifact.whiten.UNWHITENED)",
    )
    whiten.add_argument(
        "--no-whiten", dest="whiten", action="store_false", help="keep the embedding as trained"
    )
    build.add_argument(
        "--sensor-captures",
        metavar="PATH",
        help="calibrate to a sensor: a folder of its captures (or one .npy batch) of people other "
        "than its users, unlabeled (>= 20); the direction they share is projected out of the "
        "embedding (export.artifact.sensor)",
    )
    build.add_argument(
        "--minutiae",
        action="store_true",
        help="fingerprints: ship the background people's prints, so that a device may fuse the "
        "minutiae score with the embedding's (MatchConfig(minutiae=True))",
    )
    build.add_argument("--json", action="store_true", help="print the manifest as JSON")
    serve = sub.add_parser("serve", help="the offload service: downloads and enrollment training")
    serve.add_argument("--artifacts", help="folder of artifact directories and .pfb bundles")
    serve.add_argument("--key", help="the service's Ed25519 private key (0600); signs replies")
    serve.add_argument("--tokens", required=True, help="device tokens file (hashes only)")
    serve.add_argument(
        "--artifact-key", help="publisher public key; default the public half of --key"
    )
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default: %(default)s)")
    serve.add_argument(
        "--port", type=port, default=8443, help="port, 0 for a free one (default: %(default)s)"
    )
    serve.add_argument("--tls-cert", help="certificate (PEM) to serve HTTPS with")
    serve.add_argument("--tls-key", help="its private key (PEM)")
    serve.add_argument(
        "--max-request-bytes", type=at_least(1), default=4 * 2**20, help="default: %(default)s"
    )
    serve.add_argument(
        "--rate", type=float, default=20.0, help="requests/s per device (default: %(default)s)"
    )
    serve.add_argument(
        "--burst", type=at_least(1), default=40, help="burst per device (default: %(default)s)"
    )
    serve.add_argument(
        "--issue", metavar="DEVICE", help="add a device to --tokens, print its token, exit"
    )
    serve.add_argument("--tenant", help="the tenant of --issue's device")
    return parser


def _serve(args: argparse.Namespace) -> None:
    from export.serve import Limits, ServeConfig, issue_token, serve, tenant_of

    if args.issue:
        if not args.tenant:
            raise ValueError("--issue needs --tenant.")
        before = tenant_of(args.tokens, args.issue)
        print(issue_token(args.tokens, args.issue, args.tenant))
        if before is not None:  # on stderr: stdout is the token alone, for scripts
            moved = f"; it moved from tenant {before} to tenant {args.tenant}"
            print(
                f"note: device {args.issue} was already registered: its old token no longer "
                f"works{moved if before != args.tenant else ''}.",
                file=sys.stderr,
            )
        return
    if not (args.artifacts and args.key):
        raise ValueError("serve needs --artifacts and --key (or --issue DEVICE --tenant T).")
    limits = Limits(args.max_request_bytes, args.rate, args.burst)
    config = ServeConfig(
        args.artifacts,
        args.key,
        args.tokens,
        args.artifact_key,
        args.host,
        args.port,
        args.tls_cert,
        args.tls_key,
        limits,
    )
    with contextlib.suppress(KeyboardInterrupt):
        serve(config)


def _rekey(args: argparse.Namespace) -> None:
    from export.artifact.pipeline import signing_key
    from export.artifact.rekey import rekey
    from export.bundle import write_public_key
    from export.bundle.signing import check_public_path

    for path in args.public:  # before anything is signed: never over the private key
        check_public_path(path, args.key)
    key = signing_key(args.key, create=args.new_key and not args.dry_run)
    done = rekey(args.paths, old_key=args.old_key, new_key=key, dry_run=args.dry_run)
    for item in done:
        print(f"{item.action:>8}  {item.kind:<8}  {item.path}  (signer {item.signer})")
    counts = {a: sum(item.action == a for item in done) for a in ("signed", "kept", "other")}
    new_id = key_id(key.public_key()).hex()
    if args.dry_run:
        print(
            f"dry run: {sum(item.action == 'verified' for item in done)} to sign, verified; "
            f"nothing written (new key id {new_id})."
        )
        return
    for path in args.public:
        write_public_key(key.public_key(), path)
    print(
        f"{counts['signed']} signed, {counts['kept']} already signed by key {new_id}, "
        f"{counts['other']} signed by other keys (left alone)"
        + (
            f"; public key written to {', '.join(args.public)}"
            if args.public
            else "; publish the new public key (--public): apps must trust it"
        )
    )


def _build(args: argparse.Namespace) -> None:
    from devices.imagefile import read_folder
    from export.artifact.convert import ConversionError
    from export.artifact.pipeline import export_model, signing_key
    from export.bundle import write_public_key
    from export.bundle.signing import check_public_path

    if args.public:  # before the key is made or read: never over the private key
        check_public_path(args.public, args.key)
    key = signing_key(args.key, create=args.new_key)
    if args.public:
        write_public_key(key.public_key(), args.public)
    try:
        manifest = export_model(
            args.backbone,
            args.out,
            scopes=("head", *args.scope),
            bundle=args.bundle,
            bundle_key=args.bundle_key,
            private_key=key,
            int8=not args.float,
            classes=args.classes,
            whiten=args.whiten,
            sensor_captures=read_folder(args.sensor_captures) if args.sensor_captures else None,
            minutiae=args.minutiae,
        )
    except ConversionError as err:
        raise ValueError(str(err)) from None
    if args.json:
        print(json.dumps(manifest))
        return
    files = ", ".join(f"{n} {f['bytes']:,} B" for n, f in manifest["files"].items())
    ota, sensor = manifest["ota"], manifest["source"].get("sensor_calibration")
    print(
        f"{args.out}: {manifest['source']['model']} artifact, embed {manifest['embed_precision']}, "
        f"scopes {', '.join(manifest['scopes'])}; {files}"
        + (f"; OTA bundle {ota['ratio']:.1f}x smaller than the float backbone" if ota else "")
        + (
            f"; calibrated to the sensor on {sensor['captures']} captures (their mean embedding's "
            f"norm {sensor['mean_unit_norm_before']:.2f} -> {sensor['mean_unit_norm_after']:.2f})"
            if sensor
            else ""
        )
        + f"; signed by key {key_id(key.public_key()).hex()}"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "inspect":
            info = summary(read_bundle(args.bundle, public_key=args.key))
            print(json.dumps(info) if args.json else render(info))
        elif args.command == "evaluate":
            result = evaluate_bundle(args.bundle, dataset=args.dataset, public_key=args.key)
            if args.json:
                print(json.dumps(result))
            else:
                print(
                    f"{result['model']} on {result['dataset']} test ({result['examples']:,}): "
                    f"error {result['test_error_pct']:.2f}%, {result['bytes']:,} bytes, "
                    f"ratio {result['ratio']:.1f}x (reference {result['reference_bytes']:,} bytes)"
                )
        elif args.command == "build":
            _build(args)
        elif args.command == "rekey":
            _rekey(args)
        elif args.command == "serve":
            _serve(args)
        else:
            key = generate_key(args.private, args.public)
            print(
                f"private key {Path(args.private).expanduser()} (keep it secret), public key "
                f"{args.public}, key id {key_id(key.public_key()).hex()}"
            )
    except (BundleError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
