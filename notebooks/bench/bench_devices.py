"""bench-devices: the planner and the host latency estimate against LiteRT measurements.

For every artifact found (the exported ones under notebooks/results/artifacts/*/ as soon as they
exist, plus small reference artifacts converted here by devices.server.reference, cached in --workdir),
each signature is run in a fresh LiteRT process (devices.measure_signature: peak RSS rise over a
baseline taken after imports, inputs, the runtime's code pages and a heap trim; default
delegates, one thread; at the signature's planned batch, which a polymorphic-batch export does
not store in its input shapes) and compared with the planner's prediction from the artifact's
layer graph, its model file's node counts (devices.read_model_stats) and the host profile
(target: within 15%), and its latency (the fastest timed call of 3 fresh processes) with the roofline estimate plus
the builtin kernels the file runs, on the host profile (target: within 30%). The host profile is
calibrated by `python -m devices calibrate` on artifacts of other sizes, so this is out of sample.
The sram_fit table puts the LeNets (notebooks/results/models/, or their architecture when not
trained yet) and a reference EmbedNet-like backbone on every profile as dense fp32, int8 and
Deep-Compression-sized weights (notebooks/results/compression.json when present).

  python notebooks/bench/bench_devices.py [--workdir runs/bench_devices] [--runs 20] [--repeats 3]
      [--no-reference]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from _results import RESULTS, ROOT, print_table, run_main, write_results

import devices
from devices.planner import plan_signature
from devices.server import graph_from_flax

# Reference artifacts: other sizes than the calibration one (16, 32, 64, 128 at 64 px).
REFERENCES: dict[str, dict[str, Any]] = {
    "ref_tiny": {"widths": (8, 16, 32), "input_hw": 32, "embed_dim": 32},
    "ref_face64": {"widths": (32, 64, 128, 256), "input_hw": 64, "embed_dim": 128},
    "ref_fingerprint128": {"widths": (16, 32, 64, 128), "input_hw": 128, "embed_dim": 128},
    "ref_medium": {"widths": (32, 64, 128, 256), "input_hw": 96, "embed_dim": 64},
    "ref_medium_head": {
        "widths": (32, 64, 128, 256),
        "input_hw": 96,
        "embed_dim": 64,
        "scopes": ("head",),
    },
    "ref_medium_int8": {
        "widths": (32, 64, 128, 256),
        "input_hw": 96,
        "embed_dim": 64,
        "int8": True,
    },
}


def find_artifacts(workdir: Path, with_reference: bool) -> list[tuple[str, Path]]:
    out = []
    exported = RESULTS / "artifacts"
    for d in sorted(exported.glob("*/")) if exported.is_dir() else []:
        if (d / "model.tflite").is_file() and (d / "manifest.json").is_file():
            out.append((d.name, d))
    if with_reference:
        from devices.server.reference import build_reference

        for name, kwargs in REFERENCES.items():
            d = workdir / name
            if not (d / "model.tflite").is_file():
                print(f"converting {name} ...", flush=True)
                build_reference(d, **kwargs)
            out.append((name, d))
    return out


def measure_artifact(
    name: str, path: Path, host: devices.Profile, runs: int, repeats: int = 3
) -> tuple[list, list]:
    try:
        graph = devices.load_graph(path)
    except devices.ArtifactError as err:  # an export without the planner's graph: say so
        print(f"skipping {name}: {err}")
        return [], []
    size = devices.model_file(path).stat().st_size
    stats = devices.model_stats(path)
    memory, latency = [], []
    for sig in graph.signatures:
        # at the planned batch: a polymorphic-batch export stores batch 1 in its input shapes
        feed = devices.example_inputs(devices.model_file(path), sig.name, batch=sig.batch)
        m = devices.measure_signature(devices.model_file(path), sig.name, inputs=feed, runs=runs)
        # latency: the fastest call of `repeats` fresh processes (the machine is shared)
        fastest = min(
            [m.latency_s]
            + [
                devices.measure_signature(
                    devices.model_file(path), sig.name, inputs=feed, runs=runs
                ).latency_s
                for _ in range(repeats - 1)
            ]
        )
        plan = plan_signature(graph, sig, host, model_bytes=size, model_stats=stats)
        est = devices.estimate(graph, sig, host, model_stats=stats)
        memory.append(
            {
                "artifact": name,
                "signature": sig.name,
                "scope": sig.scope,
                "predicted_bytes": plan.peak_bytes,
                "measured_bytes": m.peak_bytes,
            }
        )
        latency.append(
            {
                "artifact": name,
                "signature": sig.name,
                "scope": sig.scope,
                "predicted_s": est.latency_s,
                "measured_s": fastest,
            }
        )
    return memory, latency


def _compressed_bytes(model: str) -> int | None:
    path = RESULTS / "compression.json"
    if not path.is_file():
        return None
    entry = json.loads(path.read_text()).get(model)
    if not isinstance(entry, dict):
        return None
    for key in ("bytes", "compressed_bytes"):
        if isinstance(entry.get(key), int):
            return int(entry[key])
    if isinstance(entry.get("ratio"), int | float) and isinstance(
        entry.get("reference_bytes"), int
    ):
        return round(entry["reference_bytes"] / entry["ratio"])
    return None


def backbones(workdir: Path) -> list[dict[str, Any]]:
    """(name, source, params, kernel params, MACs, peak activation bytes) of each backbone."""
    import jax
    import jax.numpy as jnp

    import pretrain

    out = []
    for model in ("lenet300", "lenet5"):
        saved = RESULTS / "models" / model
        if (saved / "model.json").is_file():
            module, variables, source = (
                pretrain.load_model(saved)[0],
                None,
                f"{saved.relative_to(ROOT)}",
            )
            variables = {"params": pretrain.load_model(saved).params}
        else:
            module = pretrain.build_model(model)
            variables = jax.eval_shape(
                module.init, jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1))
            )
            source = f"pretrain.build_model({model!r}) (not trained yet; sizes only)"
        graph = graph_from_flax(module, variables, jnp.zeros((1, 28, 28, 1)), name=model)
        out.append(_summary(model, source, graph))
    for model, hw, trained in (
        ("embednet", 128, "embed_fingerprint"),
        ("embednet", 64, "embed_face"),
    ):
        saved = RESULTS / "models" / trained
        x = jnp.zeros((1, hw, hw, 1))
        if (saved / "model.json").is_file():
            loaded = pretrain.load_model(saved)
            recorded = loaded.info.get("info", {}).get("preprocess", {}).get("input_size")
            if recorded:  # the input it was trained on (faces: 78x64 whole face)
                x = jnp.zeros((1, *recorded, 1))
            module, variables, source = (
                loaded.module,
                {"params": loaded.params},
                str(saved.relative_to(ROOT)),
            )
        else:
            module = pretrain.build_model(model)
            variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
            source = f"pretrain.build_model({model!r}) at {hw}x{hw} (not trained yet; sizes only)"
        graph = graph_from_flax(module, variables, x, name=trained)
        out.append(_summary(trained, source, graph))
    ref = workdir / "ref_medium"
    if (ref / "manifest.json").is_file():
        graph = devices.load_graph(ref)
        out.append(
            _summary(
                "ref_medium_backbone", "devices.reference (EmbedNet-like)", graph, backbone=True
            )
        )
    return out


def _summary(
    name: str, source: str, graph: devices.Graph, *, backbone: bool = False
) -> dict[str, Any]:
    layers = graph.backbone if backbone else graph.layers
    return {
        "name": name,
        "source": source,
        "params": sum(layer.params for layer in layers),
        "kernel_params": sum(layer.kernel_params for layer in layers),
        "bias_params": sum(layer.bias_params for layer in layers),
        "macs": sum(layer.macs for layer in layers),
        "activation_bytes": max(4 * (layer.input_size + layer.output_size) for layer in layers),
    }


def sram_fit(
    nets: list[dict[str, Any]], profiles: dict[str, devices.Profile]
) -> list[dict[str, Any]]:
    rows = []
    for net in nets:
        forms = {
            "dense_fp32": (4 * net["params"], 32),
            "int8": (net["kernel_params"] + 4 * net["bias_params"], 8),
        }
        dc = _compressed_bytes(net["name"])
        if dc is not None:
            forms["deep_compression"] = (dc, 8)  # decoded to int8 codebook values on the device
        for form, (nbytes, bits) in forms.items():
            for pname, p in profiles.items():
                r = devices.inference_energy(
                    nbytes,
                    net["macs"],
                    p,
                    bits=bits,
                    activation_bytes=net["activation_bytes"] * bits // 32,
                )
                # e.g. float weights on an int8-only DSP: they do not run there
                if not r["supported"]:
                    r = {**r, "energy_j": None, "weight_energy_j": None, "latency_s": None}
                rows.append(
                    {
                        "backbone": net["name"],
                        "form": form,
                        "bytes": nbytes,
                        "profile": pname,
                        "sram_bytes": p.sram_bytes,
                        "supported": r["supported"],
                        "fits_sram": r["fits_sram"],
                        "precision": r["precision"],
                        "energy_j": r["energy_j"],
                        "weight_energy_j": r["weight_energy_j"],
                        "latency_s": r["latency_s"],
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench_devices"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per latency")
    parser.add_argument("--no-reference", action="store_true", help="only exported artifacts")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    host = devices.load_profile("host")
    memory: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    for name, path in find_artifacts(workdir, not args.no_reference):
        m, t = measure_artifact(name, path, host, args.runs, args.repeats)
        memory += m
        latency += t
    profiles = devices.load_profiles()
    fit = sram_fit(backbones(workdir), profiles)
    path = write_results("devices", {"memory": memory, "latency": latency, "sram_fit": fit})

    print(f"memory (host profile calibrated {host.measured}): predicted vs measured peak, KiB")
    print_table(
        ["artifact", "signature", "predicted", "measured", "ratio"],
        [
            [
                r["artifact"],
                r["signature"],
                r["predicted_bytes"] / 1024,
                r["measured_bytes"] / 1024,
                r["predicted_bytes"] / r["measured_bytes"],
            ]
            for r in memory
        ],
    )
    ok = sum(abs(r["predicted_bytes"] / r["measured_bytes"] - 1) <= 0.15 for r in memory)
    print(f"within 15%: {ok}/{len(memory)}\n")
    print("latency: predicted vs measured, ms")
    print_table(
        ["artifact", "signature", "predicted", "measured", "ratio"],
        [
            [
                r["artifact"],
                r["signature"],
                1e3 * r["predicted_s"],
                1e3 * r["measured_s"],
                r["predicted_s"] / r["measured_s"],
            ]
            for r in latency
        ],
    )
    work = [r for r in latency if r["measured_s"] >= 1e-4]
    ok = sum(abs(r["predicted_s"] / r["measured_s"] - 1) <= 0.30 for r in work)
    print(
        f"within 30%: {ok}/{len(work)} of the calls that take >= 0.1 ms "
        f"({sum(abs(r['predicted_s'] / r['measured_s'] - 1) <= 0.30 for r in latency)}/{len(latency)} of all)\n"
    )
    print("sram_fit: weights in SRAM? energy per inference, uJ")
    print_table(
        ["backbone", "form", "KiB", *profiles],
        [
            [
                n,
                f,
                next(r["bytes"] for r in fit if r["backbone"] == n and r["form"] == f) / 1024,
                *[
                    _cell(
                        next(
                            r
                            for r in fit
                            if r["backbone"] == n and r["form"] == f and r["profile"] == p
                        )
                    )
                    for p in profiles
                ],
            ]
            for n, f in dict.fromkeys((r["backbone"], r["form"]) for r in fit)
        ],
    )
    print(f"\nwrote {path}")


def _cell(row: dict[str, Any]) -> str:
    if not row["supported"] or row["energy_j"] is None:
        return "n/a"
    energy = row["energy_j"] * 1e6
    return (
        f"{'SRAM' if row['fits_sram'] else 'DRAM'} {energy:.3g}" if math.isfinite(energy) else "-"
    )


if __name__ == "__main__":
    run_main(main)
