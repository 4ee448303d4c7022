"""``python -m devices``: argument parsing only; the work is in the library.

python -m devices list [--json]
python -m devices plan --artifact DIR --profile NAME [--json]
python -m devices energy --artifact DIR [--profile NAME ...] [--signature NAME] [--json]
python -m devices energy --weights-bytes N --macs N --bits 32|16|8 [--profile NAME ...] [--json]
python -m devices offload --artifact DIR --profile NAME --connectivity offline|metered|unmetered
    --battery 0..1 [--charging] [--consent] [--scope NAME] [--free-bytes N]
python -m devices calibrate [--out PATH] [--speed]  (server side: converts probe models with TF)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import devices
from devices.cli_args import at_least


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devices", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="the device profiles and their main figures")
    ls.add_argument("--json", action="store_true")
    plan = sub.add_parser("plan", help="memory and time plan of an artifact's signatures")
    plan.add_argument(
        "--artifact", required=True, help="directory with model.tflite + manifest.json"
    )
    plan.add_argument("--profile", required=True, help="profile name (see `list`) or a .json path")
    plan.add_argument("--json", action="store_true")
    energy = sub.add_parser("energy", help="energy and latency per call, on one or more profiles")
    source = energy.add_mutually_exclusive_group(required=True)
    source.add_argument("--artifact", help="artifact directory")
    source.add_argument(
        "--weights-bytes", type=at_least(0), help="a backbone known by its stored size"
    )
    energy.add_argument("--signature", help="with --artifact: only this signature (default: all)")
    energy.add_argument(
        "--macs", type=at_least(0), help="with --weights-bytes: multiply-accumulates per example"
    )
    energy.add_argument(
        "--bits", type=at_least(1), help="with --weights-bytes: its stored precision (default 32)"
    )
    energy.add_argument("--profile", action="append", help="profile(s); default: all")
    energy.add_argument("--json", action="store_true")
    off = sub.add_parser("offload", help="local or cloud enrollment, and why")
    off.add_argument("--artifact", required=True)
    off.add_argument("--profile", required=True)
    off.add_argument("--connectivity", required=True, choices=("offline", "metered", "unmetered"))
    off.add_argument("--battery", type=float, required=True, help="remaining charge, 0..1")
    off.add_argument("--charging", action="store_true")
    off.add_argument("--consent", action="store_true", help="the user allows sending embeddings")
    off.add_argument("--scope", help="training scope (default: the widest that fits)")
    off.add_argument(
        "--free-bytes", type=at_least(0), help="memory free now (default: the profile's)"
    )
    cal = sub.add_parser("calibrate", help="measure this machine into the host profile")
    cal.add_argument("--out", help="where to write (default devices/profiles/host.json)")
    cal.add_argument(
        "--speed",
        action="store_true",
        help="only the call costs, kernel classes and speed fit (into the existing profile)",
    )
    return parser


def _mib(n: float) -> str:
    return f"{n / 2**20:.2f}"


def _table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _list(args: argparse.Namespace) -> int:
    profiles = devices.load_profiles()
    if args.json:
        print(json.dumps({n: _profile_dict(p) for n, p in profiles.items()}, indent=2))
        return 0
    rows = []
    for name, p in profiles.items():
        peaks = ", ".join(f"{k} {v / 1e9:g}" for k, v in p.peak_ops_per_s.items())
        battery = "mains" if p.battery_joules is None else f"{p.battery_joules / 3600:.2f} Wh"
        rows.append(
            [
                name,
                _mib(p.memory_bytes),
                f"{p.sram_bytes / 1024:.0f}",
                peaks,
                f"{p.dram_bandwidth_bytes_per_s / 1e9:.3g}",
                battery,
                p.measured or "cited",
            ]
        )
    _table(
        ["profile", "memory MiB", "SRAM KiB", "peak Gops/s", "DRAM GB/s", "battery", "figures"],
        rows,
    )
    return 0


def _profile_dict(p: Any) -> dict[str, Any]:
    return {
        "description": p.description,
        "memory_bytes": p.memory_bytes,
        "sram_bytes": p.sram_bytes,
        "flash_bytes": p.flash_bytes,
        "precisions": list(p.precisions),
        "peak_ops_per_s": dict(p.peak_ops_per_s),
        "dram_bandwidth_bytes_per_s": p.dram_bandwidth_bytes_per_s,
        "battery_joules": p.battery_joules,
        "measured": p.measured,
        "path": str(p.path),
    }


def _plan(args: argparse.Namespace) -> int:
    profile = devices.load_profile(args.profile)
    graph = devices.load_graph(args.artifact)
    size = devices.model_file(args.artifact).stat().st_size
    stats = devices.model_stats(args.artifact)
    plans = {
        s.name: devices.plan_signature(graph, s, profile, model_bytes=size, model_stats=stats)
        for s in graph.signatures
    }
    out = []
    for sig in graph.signatures:
        p = plans[sig.name]
        e = devices.estimate(graph, sig, profile, model_stats=stats)
        out.append(
            {
                **p.to_dict(),
                "latency_s": e.latency_s,
                "energy_j": e.energy_j,
                "fits": p.peak_bytes <= profile.memory_bytes,
            }
        )
    if args.json:
        print(
            json.dumps(
                {"artifact": str(args.artifact), "profile": profile.name, "signatures": out},
                indent=2,
            )
        )
        return 0
    print(f"{graph.name} on {profile.name} ({_mib(profile.memory_bytes)} MiB for the app)")
    rows = [
        [
            r["signature"],
            r["scope"] or "-",
            r["batch"],
            _mib(r["peak_bytes"]),
            _mib(r["resident_bytes"]),
            _mib(r["step_bytes"]),
            _mib(r["activations"]),
            _mib(r["gradients"] + r["workspace"]),
            f"{r['latency_s'] * 1e3:.3f}",
            f"{r['energy_j'] * 1e3:.4f}",
            "yes" if r["fits"] else "NO",
        ]
        for r in out
    ]
    _table(
        [
            "signature",
            "scope",
            "batch",
            "peak MiB",
            "resident",
            "step",
            "activations",
            "grads+work",
            "latency ms",
            "energy mJ",
            "fits",
        ],
        rows,
    )
    widest, _ = devices.widest_fitting_scope(
        graph,
        profile,
        profile.memory_bytes,
        model_bytes=size,
        model_stats=stats,
    )
    print(f"widest scope that fits: {widest or 'none'}")
    return 0


def _energy(args: argparse.Namespace) -> int:
    names = args.profile or devices.profile_names()
    profiles = [devices.load_profile(n) for n in names]
    rows: list[dict[str, Any]] = []
    if args.artifact and (args.macs is not None or args.bits is not None):
        raise ValueError("--macs and --bits describe a --weights-bytes backbone, not --artifact.")
    if args.weights_bytes is not None and args.signature:
        raise ValueError("--signature picks one of an --artifact's signatures.")
    if args.artifact:
        graph = devices.load_graph(args.artifact)
        sigs = [graph.signature(args.signature)] if args.signature else list(graph.signatures)
        for p in profiles:
            for sig in sigs:
                e = devices.estimate(graph, sig, p)
                rows.append(
                    {
                        "profile": p.name,
                        "signature": sig.name,
                        "latency_s": e.latency_s,
                        "energy_j": e.energy_j,
                        "weights_in_sram": e.weights_in_sram,
                    }
                )
    elif args.macs is not None:
        bits = 32 if args.bits is None else args.bits
        for p in profiles:
            r = devices.inference_energy(args.weights_bytes, args.macs, p, bits=bits)
            rows.append(
                {
                    "profile": p.name,
                    "signature": "inference",
                    "latency_s": r["latency_s"],
                    "energy_j": r["energy_j"],
                    "weights_in_sram": r["fits_sram"],
                }
            )
    else:
        raise ValueError("--weights-bytes N needs --macs N.")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _table(
        ["profile", "signature", "latency ms", "energy uJ", "weights in SRAM"],
        [
            [
                r["profile"],
                r["signature"],
                f"{r['latency_s'] * 1e3:.4g}",
                f"{r['energy_j'] * 1e6:.4g}",
                "yes" if r["weights_in_sram"] else "no",
            ]
            for r in rows
        ],
    )
    return 0


def _offload(args: argparse.Namespace) -> int:
    profile = devices.load_profile(args.profile)
    graph = devices.load_graph(args.artifact)
    size = devices.model_file(args.artifact).stat().st_size
    stats = devices.model_stats(args.artifact)
    free = args.free_bytes if args.free_bytes is not None else profile.memory_bytes
    if args.scope:
        scope = args.scope
        if scope not in graph.scopes:
            raise ValueError(
                f"unknown scope {scope!r}; the artifact has {', '.join(graph.scopes)}."
            )
    else:
        widest, _ = devices.widest_fitting_scope(
            graph, profile, free, model_bytes=size, model_stats=stats
        )
        scope = widest or graph.scopes[0]
    sig = next(s for s in graph.signatures if s.kind == "train" and s.scope == scope)
    plan = devices.plan_signature(graph, sig, profile, model_bytes=size, model_stats=stats)
    est = devices.estimate(graph, sig, profile, model_stats=stats)
    situation = devices.Situation(
        args.connectivity,
        args.battery,
        args.charging,
        args.consent,
        est.latency_s,
        est.energy_j,
        plan.peak_bytes,
        free,
        profile.battery_joules,
    )
    print(devices.decide(situation))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"list": _list, "plan": _plan, "energy": _energy, "offload": _offload}
    try:
        if args.command == "calibrate":  # server side: TensorFlow converts the probe models
            from devices.server.calibrate import calibrate_host, update_speed

            if args.speed:
                target = Path(args.out) if args.out else None
                update_speed(target)
                print(f"updated {target or 'devices/profiles/host.json'}")
            else:
                print(f"wrote {calibrate_host(args.out)}")
            return 0
        return handlers[args.command](args)
    except (
        devices.ProfileError,
        devices.ArtifactError,
        devices.GraphError,
        devices.MeasureError,
        ValueError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
