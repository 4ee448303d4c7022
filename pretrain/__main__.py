"""``python -m pretrain``: argument parsing only; the work is in the library.

python -m pretrain --config pretrain/configs/lenet300.py --workdir runs/lenet300 [--resume]
    [--set key=value ...] [--coordinator HOST:PORT --num-processes N --process-id I]
"""

from __future__ import annotations

import argparse
import logging
import sys

COMMANDS = ("train",)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pretrain", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model from a config file (the default command)")
    train.add_argument(
        "--config", required=True, help="config file, e.g. pretrain/configs/lenet300.py"
    )
    train.add_argument(
        "--workdir", required=True, help="checkpoints, metrics.jsonl and model/ go here"
    )
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (repeatable)")  # fmt: skip
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = train.add_argument_group("multi-process (data parallel over machines)")
    group.add_argument("--coordinator", help="HOST:PORT of process 0")
    group.add_argument("--num-processes", type=int, default=1)
    group.add_argument("--process-id", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in (*COMMANDS, "-h", "--help"):
        argv.insert(0, "train")  # `python -m pretrain --config ...` means train
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import pretrain  # after parsing, so --help stays fast

    try:
        if args.num_processes > 1:
            if not args.coordinator:
                raise pretrain.ConfigError("--num-processes > 1 needs --coordinator HOST:PORT.")
            pretrain.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        config = pretrain.load_config(args.config, args.overrides)
        result = pretrain.fit(
            config, args.workdir, resume=args.resume, progress=not args.no_progress
        )
    except (pretrain.ConfigError, pretrain.DataError, pretrain.CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with --resume --workdir {args.workdir}", file=sys.stderr)
        return 130
    print(
        f"done: {result.epochs} epochs, test error {100 * result.test_error:.2f}%, "
        f"{result.images_per_s:.0f} images/s, {result.wall_s:.0f} s; model in {result.model_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
