"""``python -m pretrain``: argument parsing only; the work is in the library.

python -m pretrain --config pretrain/configs/lenet300.py --workdir runs/lenet300 [--resume]
    [--set key=value ...] [--coordinator HOST:PORT --num-processes N --process-id I]
python -m pretrain --config pretrain/configs/embed_face.py --workdir runs/embed_face
    (a staged config: stages run in order, then its evaluation suite unless --no-evaluation;
    --set <stage>.key=value)
python -m pretrain data gallery --out gallery.png [--seed 0 --identities 5 --impressions 4]
python -m pretrain data faces --out face_framing.png [--seed 0 --per-set 8]
python -m pretrain data stats --source synthetic|fvc/<set>|orl [--pairs [--registration core]]
    [--plot stats.png]
python -m pretrain localiser --generator-config pretrain/configs/embed_fingerprint_mixed.py
    [--generator-config <another> ...] [--identities N ...]
    [--workdir runs/localiser --out devices/localiser.npz --json notebooks/results/localiser.json]
    (the learned fingerprint anchor, devices.localiser; --evaluate: no training, the weights'
    errors at the FVC sensors' image sizes)
python -m pretrain minutiae-detector --generator-config pretrain/configs/embed_fingerprint_flowmix.py
    [--workdir runs/minutiae_detector --out devices/minutiae_detector.npz
    --json notebooks/results/minutiae_detector.json] [--steps N]
    (the learned minutiae detector, pretrain.minutiae_detector; resumes from --workdir)
python -m pretrain snapshot --workdir runs/embed_face [--stage NAME] [--epoch N] [--out DIR]
    (the best parameters so far of a run that is still going or was stopped, as a model:
    <run folder>/snapshot by default; the run itself is not touched)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from devices.cli_args import at_least
from pretrain import tools_cli

COMMANDS = ("train", "data", "localiser", "minutiae-detector", "snapshot")


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
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument(
        "--no-evaluation",
        action="store_true",
        help="skip a staged config's evaluation suite (real datasets) after training",
    )
    group = train.add_argument_group("multi-process (data parallel over machines)")
    group.add_argument("--coordinator", help="HOST:PORT of process 0")
    group.add_argument("--num-processes", type=at_least(1), default=1)
    group.add_argument("--process-id", type=at_least(0), default=0, help="0 .. --num-processes - 1")
    _data_parser(sub)
    tools_cli.localiser_parser(sub)
    tools_cli.detector_parser(sub)
    _snapshot_parser(sub)
    return parser


def _snapshot_parser(sub: argparse._SubParsersAction) -> None:
    snap = sub.add_parser(
        "snapshot", help="write a run's best parameters so far (from a checkpoint) as a model"
    )
    snap.add_argument("--workdir", required=True, help="the run's --workdir")
    snap.add_argument("--stage", help="the stage, when a staged run has several with checkpoints")
    snap.add_argument(
        "--epoch", type=int, help="the checkpoint (default: the newest); the best up to it"
    )
    snap.add_argument("--out", help="the model folder (default: <run folder>/snapshot)")


def _snapshot(args: argparse.Namespace) -> int:
    from devices.files import FolderError
    from pretrain.config import ConfigError
    from pretrain.train.checkpoint import CheckpointError
    from pretrain.train.snapshot import snapshot_model

    try:
        out = snapshot_model(args.workdir, stage=args.stage, epoch=args.epoch, out=args.out)
    except (CheckpointError, ConfigError, FolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = json.loads((out / "model.json").read_text())["info"]
    print(
        f"wrote {out}: best of epochs 1-{info['snapshot']['checkpoint']}, held-out "
        f"{info['error_kind']} {info['val_error_pct']:.2f}%"
    )
    return 0


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf")  # what both matplotlib and Pillow write


def _image_file(text: str) -> str:
    """An argparse ``type``: the path of an image file to write (not a folder)."""
    from pathlib import Path

    if Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a directory; give an image file path, e.g. {Path(text) / 'out.png'}"
        )
    if Path(text).suffix.lower() not in IMAGE_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"{text}: give an image file path ending in {', '.join(IMAGE_SUFFIXES)}"
        )
    return text


def _data_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="synthetic fingerprint gallery and dataset statistics")
    tasks = data.add_subparsers(dest="task", required=True)
    gallery = tasks.add_parser("gallery", help="masters and impressions of synthetic prints")
    gallery.add_argument("--out", required=True, type=_image_file, help="PNG to write")
    gallery.add_argument("--seed", type=int, default=0)
    gallery.add_argument("--identities", type=at_least(1), default=5)
    gallery.add_argument("--impressions", type=at_least(0), default=4)
    faces = tasks.add_parser("faces", help="LFW, Extended Yale B and ORL in ORL's framing")
    faces.add_argument("--out", required=True, type=_image_file, help="PNG to write")
    faces.add_argument("--seed", type=int, default=0)
    faces.add_argument("--per-set", type=at_least(1), default=8, help="faces per dataset row")
    stats = tasks.add_parser(
        "stats", help="ridge period, coherence, foreground, histogram, classes"
    )
    stats.add_argument(
        "--source",
        required=True,
        action="append",
        help="synthetic, fvc/<set> or orl (repeatable: side by side)",
    )
    stats.add_argument("--seed", type=int, default=0, help="synthetic generator seed")
    stats.add_argument("--identities", type=at_least(1), default=10, help="synthetic identities")
    stats.add_argument(
        "--impressions", type=at_least(1), default=8, help="synthetic impressions each"
    )
    stats.add_argument(
        "--limit", type=at_least(1), help="at most this many real images (default: all)"
    )
    stats.add_argument(
        "--pairs",
        action="store_true",
        help="also genuine pairs: placement shift, rotation, residual after registration",
    )
    stats.add_argument(
        "--registration",
        choices=("anchor", "core"),
        default="anchor",
        help="the pairs' registration: the learned anchor (the device's) or the symmetry core",
    )
    stats.add_argument(
        "--generator",
        metavar="JSON",
        help="synthetic generator settings, e.g. '{\"partial_prob\": 0.6}' (GeneratorConfig)",
    )
    stats.add_argument("--plot", type=_image_file, help="also save a figure to this PNG")
    stats.add_argument("--json", help="also write the statistics to this JSON file")


def _data(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from pretrain.data import DataError
    from pretrain.data.fingerprint import save_gallery
    from pretrain.data.stats_report import format_table, plot_stats, source_stats

    try:
        if args.task == "gallery":
            out = save_gallery(
                args.out, seed=args.seed, identities=args.identities, impressions=args.impressions
            )
            print(f"wrote {out}")
            return 0
        if args.task == "faces":
            from pretrain.data.face_sets import framing_gallery

            print(f"wrote {framing_gallery(args.out, per_set=args.per_set, seed=args.seed)}")
            return 0
        generator = None
        if args.generator:
            from pretrain.data.fingerprint import GeneratorConfig

            try:
                options = json.loads(args.generator)
            except json.JSONDecodeError as err:
                raise ValueError(f"--generator is not JSON: {err}") from None
            if not isinstance(options, dict):
                raise ValueError("--generator wants a JSON object of GeneratorConfig settings.")
            generator = GeneratorConfig.from_dict(options)
        table = {}
        for source in args.source:
            table[source] = source_stats(
                source,
                identities=args.identities,
                seed=args.seed,
                impressions=args.impressions,
                limit=args.limit or 0,
                pairs=args.pairs,
                progress=True,
                generator=generator,
                registration=args.registration,
            )
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(table))
    if args.plot:
        print(f"wrote {plot_stats(table, args.plot)}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n")
    return 0


def _print_staged(staged: object) -> None:
    from pretrain.train import StagedResult

    assert isinstance(staged, StagedResult)
    for name, stage in staged.stages.items():
        print(
            f"stage {name}: {stage['task']}, {stage['epochs']} epochs, {stage['steps']} steps, "
            f"held-out {stage['error_kind']} {stage['test_error_pct']:.2f}%"
        )
    if staged.evaluation is not None:
        print(json.dumps(_headline(staged.evaluation), indent=1))
    print(f"done: model in {staged.model_dir}")


def _headline(report: dict) -> dict:
    """The figures of an evaluation report (per set), without the per-baseline detail."""
    if "eer_pct" not in report:
        return {k: _headline(v) for k, v in report.items() if isinstance(v, dict)}
    keep = ("eer_pct", "frr_pct_at_far", "identification_pct")
    out = {k: report[k] for k in keep if k in report}
    if "baseline" in report:
        out["baseline"] = {k: report["baseline"][k] for k in ("method", *keep)}
    return out


def _check_train_args(args: argparse.Namespace) -> None:
    """What the parser cannot check alone, before any data is read or a process group joined."""
    from pathlib import Path

    from pretrain.config import ConfigError

    if args.process_id >= args.num_processes:
        raise ConfigError(
            f"--process-id {args.process_id} is not one of the {args.num_processes} processes "
            f"(0 .. {args.num_processes - 1})."
        )
    workdir = Path(args.workdir).expanduser()
    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"--workdir {workdir} is a file; give a directory (it is created).")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in (*COMMANDS, "-h", "--help"):
        argv.insert(0, "train")  # `python -m pretrain --config ...` means train
    args = _parser().parse_args(argv)
    if args.command == "data":
        return _data(args)
    if args.command == "localiser":
        return tools_cli.localiser(args)
    if args.command == "minutiae-detector":
        return tools_cli.detector(args)
    if args.command == "snapshot":
        return _snapshot(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import pretrain  # after parsing, so --help stays fast

    try:
        _check_train_args(args)
        if args.num_processes > 1:
            if not args.coordinator:
                raise pretrain.ConfigError("--num-processes > 1 needs --coordinator HOST:PORT.")
            pretrain.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        config = pretrain.load_run(args.config, args.overrides)
        if isinstance(config, pretrain.StagedConfig):
            staged = pretrain.fit_stages(
                config,
                args.workdir,
                resume=args.resume,
                progress=not args.no_progress,
                evaluate=not args.no_evaluation,
            )
            _print_staged(staged)
            return 0
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
