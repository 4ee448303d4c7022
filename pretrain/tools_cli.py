"""The ``localiser`` and ``minutiae-detector`` commands of ``python -m pretrain``: argument
parsing for the fingerprint tools trained beside the backbones (the work is in
:mod:`pretrain.localiser` and :mod:`pretrain.minutiae_detector`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from devices.cli_args import at_least

if TYPE_CHECKING:
    from pretrain.data.fingerprint import GeneratorConfig


def _written(args: argparse.Namespace, figures: dict[str, Any]) -> int:
    """Writes a command's figures (and the command) to ``--json``; says where both files went."""
    from pathlib import Path

    figures["command"] = "python -m pretrain " + " ".join(sys.argv[1:])
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {args.out} and {args.json}")
    return 0


def localiser_parser(sub: argparse._SubParsersAction) -> None:
    loc = sub.add_parser("localiser", help="train the learned fingerprint anchor (devices)")
    loc.add_argument(
        "--generator-config",
        required=True,
        action="append",
        help="a config module whose GENERATOR draws the prints, e.g. "
        "pretrain/configs/embed_fingerprint_mixed.py; repeat to train on several generators "
        "(--evaluate measures the first one's prints)",
    )
    loc.add_argument(
        "--workdir", default="runs/localiser", help="cached prints go here (default: %(default)s)"
    )
    loc.add_argument(
        "--out",
        default="devices/localiser.npz",
        help="the integer weights (default: %(default)s, the shipped ones: replaced)",
    )
    loc.add_argument(
        "--json",
        default="notebooks/results/localiser.json",
        help="its figures (default: %(default)s)",
    )
    loc.add_argument(
        "--identities",
        type=at_least(1),
        action="append",
        help="training identities, from 300 (default 1000); one per --generator-config, or "
        "one for all",
    )
    loc.add_argument(
        "--val-identities",
        type=at_least(1),
        default=100,
        help="held-out identities after every generator's training ones, drawn by each: they "
        "choose the epoch",
    )
    loc.add_argument("--epochs", type=at_least(1), default=None, help="default: LocaliserConfig's")
    loc.add_argument(
        "--evaluate",
        action="store_true",
        help="no training: measure the weights at --out on the held-out identities at the FVC "
        "sensors' image sizes and add them to --json (val_by_impression_size)",
    )
    loc.add_argument("--no-progress", action="store_true", help="no progress bar")


def detector_parser(sub: argparse._SubParsersAction) -> None:
    det = sub.add_parser(
        "minutiae-detector", help="train the learned minutiae detector on generator truth"
    )
    det.add_argument(
        "--generator-config",
        required=True,
        help="a config module whose GENERATOR draws the prints, e.g. "
        "pretrain/configs/embed_fingerprint_flowmix.py",
    )
    det.add_argument(
        "--workdir",
        default="runs/minutiae_detector",
        help="cached prints and the checkpoint (default: %(default)s)",
    )
    det.add_argument(
        "--out",
        default="devices/minutiae_detector.npz",
        help="the chosen weights and threshold (default: %(default)s, the shipped ones: replaced)",
    )
    det.add_argument(
        "--json",
        default="notebooks/results/minutiae_detector.json",
        help="its figures (default: %(default)s)",
    )
    det.add_argument("--steps", type=at_least(1), default=None, help="default: DetectorConfig's")
    det.add_argument("--no-progress", action="store_true", help="no progress bar")


def detector(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from pretrain.config import ConfigError, load_module
    from pretrain.data.fingerprint import GeneratorConfig
    from pretrain.minutiae_detector import DetectorConfig, fit

    try:
        module = load_module(Path(args.generator_config))
        if not hasattr(module, "GENERATOR"):
            raise ConfigError(f"{args.generator_config} defines no GENERATOR.")
        generator = GeneratorConfig.from_dict(module.GENERATOR)
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    config = DetectorConfig()
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps)
    figures = fit(
        Path(args.workdir),
        Path(args.out),
        generator=generator,
        config=config,
        progress=not args.no_progress,
    )
    at = f"{figures['threshold']:.2f}"
    print(f"held-out training identities at threshold {at}: {json.dumps(figures['val'][at])}")
    return _written(args, figures)


def localiser(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from pretrain.config import ConfigError, load_module
    from pretrain.data.fingerprint import GeneratorConfig
    from pretrain.localiser import (
        IMPRESSIONS,
        TRAIN_IDENTITIES,
        LocaliserConfig,
        check_batches,
        fit,
    )

    counts = args.identities or [TRAIN_IDENTITIES.stop - TRAIN_IDENTITIES.start]
    try:
        generators = []
        for path in args.generator_config:
            module = load_module(Path(path))
            if not hasattr(module, "GENERATOR"):
                raise ConfigError(f"{path} defines no GENERATOR.")
            generators.append(GeneratorConfig.from_dict(module.GENERATOR))
        if len(counts) == 1:
            counts = counts * len(generators)
        if len(counts) != len(generators):
            raise ConfigError(
                f"give one --identities for all generators or one per --generator-config "
                f"({len(generators)}), got {len(counts)}."
            )
        config = LocaliserConfig()
        if args.epochs is not None:
            config = dataclasses.replace(config, epochs=args.epochs)
        start = TRAIN_IDENTITIES.start
        train = [range(start, start + n) for n in counts]
        if not args.evaluate:
            check_batches(train, IMPRESSIONS, config)
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    val = range(start + max(counts), start + max(counts) + args.val_identities)
    if args.evaluate:
        return _localiser_sizes(args, generators[0], val)
    figures = fit(
        Path(args.workdir),
        Path(args.out),
        generators=generators,
        train_identities=train,
        val_identities=val,
        config=config,
        progress=not args.no_progress,
    )
    print(json.dumps(figures["val_integer"]))
    return _written(args, figures)


def _localiser_sizes(args: argparse.Namespace, generator: GeneratorConfig, val: range) -> int:
    """``localiser --evaluate``: the weights at ``--out`` at other impression sizes, into the JSON
    beside the figures their training wrote."""
    from pathlib import Path

    from devices.localiser import Localiser
    from pretrain.localiser import SIZE_IMPRESSIONS, size_errors

    weights, table = Path(args.out), Path(args.json)
    try:
        localiser = Localiser.from_bytes(weights.read_bytes())
        figures = json.loads(table.read_text()) if table.exists() else {}
    except (OSError, ValueError, KeyError) as err:
        print(f"error: cannot read the localiser {weights} or {table}: {err}", file=sys.stderr)
        return 2
    figures["val_by_impression_size"] = size_errors(
        localiser, generator, val, SIZE_IMPRESSIONS, progress=not args.no_progress
    )
    figures["evaluate_command"] = "python -m pretrain " + " ".join(sys.argv[1:])
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {table}")
    return 0
