"""``python -m export``: argument parsing only; the work is in the library.

python -m export inspect BUNDLE [--key PUBLIC.pem] [--json]
python -m export evaluate BUNDLE --dataset mnist [--key PUBLIC.pem] [--json]
python -m export keygen [--private ~/.config/pocketfit/signing.key] --public DIR/signing.pub
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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

KEY_HELP = "public key (PEM) the bundle must be signed with; default: signing.pub beside it"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    inspect = sub.add_parser("inspect", help="verify a bundle and print its per-layer size table")
    inspect.add_argument("bundle", help="a .pfb file")
    inspect.add_argument("--key", help=KEY_HELP)
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate = sub.add_parser("evaluate", help="verify, decode and measure the test error")
    evaluate.add_argument("bundle", help="a .pfb file")
    evaluate.add_argument("--dataset", required=True, choices=DATASETS)
    evaluate.add_argument("--key", help=KEY_HELP)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    keygen = sub.add_parser("keygen", help="create an Ed25519 signing key pair")
    keygen.add_argument("--private", default=str(DEFAULT_PRIVATE_KEY),
                        help="private key file, kept outside any repository (default: %(default)s)")  # fmt: skip
    keygen.add_argument("--public", required=True, help="public key file to publish with bundles")
    return parser


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
