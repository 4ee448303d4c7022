"""Size accounting of a bundle, per layer and per stage, as in the Deep Compression tables.

The reference is the dense float32 network, biases included. A layer's bytes are everything the
file spends on it (its header records, Huffman tables, codebook, streams, biases); the rest of the
file (preamble, model name and options, signature) is ``overhead_bytes``, so the layers plus the
overhead add up to the file size exactly.

Stages (paper tables 2-5), each with the same container overhead:

- ``pruned``: every stored entry (fillers included) as a float32 value plus a fixed-width index;
- ``quantized``: fixed-width codes of ``ceil(log2(codebook))`` bits plus the index, plus the
  codebook;
- ``huffman``: the file as written.

References:
  Han, Mao, Dally, "Deep Compression", ICLR 2016, tables 1-5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from devices.bundle.codec import TensorInfo
from export.bundle.io import Bundle


def _layer(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else name


def _bits(codebook: int) -> int:
    return max(1, math.ceil(math.log2(codebook))) if codebook > 1 else 1


def _stage_payload(t: TensorInfo) -> dict[str, int]:
    if t.kind == "raw":
        raw = t.value_bits // 8
        return {"pruned": raw, "quantized": raw}
    book = (t.codebook - 1) * (2 if t.dtype == "float16" else 4)
    return {
        "pruned": math.ceil(t.entries * (32 + t.index_bits) / 8),
        "quantized": math.ceil(t.entries * (_bits(t.codebook) + t.index_bits) / 8) + book,
    }


def layer_table(bundle: Bundle) -> list[dict[str, Any]]:
    """One row per layer: weights, kept %, bits, index bits, bytes and ratio (paper table 2)."""
    rows: dict[str, dict[str, Any]] = {}
    for t in bundle.tensors:
        row = rows.setdefault(
            _layer(t.name),
            {
                "layer": _layer(t.name),
                "params": 0,
                "weights": 0,
                "nonzero": 0,
                "entries": 0,
                "weight_bits": None,
                "weight_bits_huffman": None,
                "index_bits": None,
                "index_bits_huffman": None,
                "order": None,
                "stored_rows": None,
                "stored_cols": None,
                "bytes": 0,
            },
        )
        row["params"] += t.size
        row["bytes"] += t.nbytes
        if t.kind == "coded":
            row["weights"] += t.size
            row["nonzero"] += t.nonzero
            row["entries"] += t.entries
            row["weight_bits"] = _bits(t.codebook)
            row["weight_bits_huffman"] = t.value_bits / t.entries if t.entries else 0.0
            row["index_bits"] = t.index_bits
            row["index_bits_huffman"] = t.index_payload_bits / t.entries if t.entries else 0.0
            row["order"] = t.order
            row["stored_rows"], row["stored_cols"] = list(t.rows), list(t.cols)
    out = []
    for row in rows.values():
        row["kept_pct"] = 100.0 * row["nonzero"] / row["weights"] if row["weights"] else 100.0
        row["reference_bytes"] = 4 * row["params"]
        row["ratio"] = row["reference_bytes"] / row["bytes"]
        out.append(row)
    return out


def stage_sizes(bundle: Bundle) -> dict[str, dict[str, float]]:
    """Bytes and ratio after pruning, after quantization, and after Huffman coding."""
    overhead = overhead_bytes(bundle)
    totals = {"pruned": overhead, "quantized": overhead}
    for t in bundle.tensors:
        for stage, size in _stage_payload(t).items():
            totals[stage] += size
    totals_all = {**totals, "huffman": bundle.nbytes}
    return {
        stage: {"bytes": size, "ratio": bundle.reference_bytes / size}
        for stage, size in totals_all.items()
    }


def overhead_bytes(bundle: Bundle) -> int:
    """Bytes not spent on any tensor: preamble, model name and options, counts, signature."""
    return bundle.nbytes - sum(t.nbytes for t in bundle.tensors)


def summary(bundle: Bundle) -> dict[str, Any]:
    """Everything ``inspect --json`` prints: totals, per-layer rows and stages."""
    coded = [t for t in bundle.tensors if t.kind == "coded"]
    weights = sum(t.size for t in coded)
    return {
        "model": bundle.model,
        "bytes": bundle.nbytes,
        "reference_bytes": bundle.reference_bytes,
        "ratio": bundle.ratio,
        "params": sum(t.size for t in bundle.tensors),
        "weights_kept_pct": 100.0 * sum(t.nonzero for t in coded) / weights if weights else 100.0,
        "overhead_bytes": overhead_bytes(bundle),
        "key_id": bundle.key_id,
        "layers": layer_table(bundle),
        "stages": stage_sizes(bundle),
    }


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.2f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _stored(row: dict[str, Any]) -> str | None:
    if row["stored_rows"] is None:
        return None
    return f"{row['stored_rows'][0]}x{row['stored_cols'][0]}"


LAYER_HEADER = ("layer", "weights", "kept %", "bits", "bits(H)", "idx", "idx(H)", "stored")
SIZE_HEADER = ("bytes", "ratio")


def layer_rows(layers: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """One table row per :func:`layer_table` entry, in ``LAYER_HEADER + SIZE_HEADER`` order."""
    return [
        [
            r["layer"],
            r["weights"],
            r["kept_pct"],
            r["weight_bits"],
            r["weight_bits_huffman"],
            r["index_bits"],
            r["index_bits_huffman"],
            _stored(r),
            r["bytes"],
            r["ratio"],
        ]
        for r in layers
    ]


def render(info: dict[str, Any]) -> str:
    """The human-readable ``inspect`` output of :func:`summary`'s dict."""
    header = [*LAYER_HEADER, *SIZE_HEADER]
    rows = layer_rows(info["layers"])
    rows.append(
        [
            "(header+signature)",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            info["overhead_bytes"],
            None,
        ]
    )
    rows.append(
        [
            "total",
            sum(r["weights"] for r in info["layers"]),
            info["weights_kept_pct"],
            None,
            None,
            None,
            None,
            None,
            info["bytes"],
            info["ratio"],
        ]
    )
    stages = "  ".join(
        f"{k}: {v['bytes']:,} B ({v['ratio']:.1f}x)" for k, v in info["stages"].items()
    )
    return (
        f"{info['model']}: {info['bytes']:,} bytes, reference {info['reference_bytes']:,} bytes "
        f"(dense float32), ratio {info['ratio']:.1f}x, signed by key {info['key_id']}\n\n"
        f"{format_table(header, rows)}\n\nstages: {stages}\n"
        "bits = fixed-width code bits, bits(H) / idx(H) = Huffman bits per stored entry, "
        "stored = distinct rows x columns kept of the (inputs x units) matrix"
    )
