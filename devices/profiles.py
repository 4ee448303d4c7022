"""Device profiles: one JSON data file per device class, every figure with its source.

A profile file (``devices/profiles/<name>.json``, format ``pocketfit-profile/1``) holds figures,
each ``{"value": ..., "source": "..."}``:

- ``memory_bytes``: memory the app may use; ``sram_bytes``: on-chip SRAM that can hold weights;
  ``flash_bytes``: read-only storage weights can execute from (microcontrollers), else null;
- ``precisions``: the arithmetic the device runs (``fp32``, ``fp16``, ``int8``);
- ``peak_ops_per_s``: ``{precision: figure}``; one multiply-accumulate counts as two ops;
- ``dram_bandwidth_bytes_per_s``, ``sram_bandwidth_bytes_per_s``;
- ``op_overhead_s``: fixed time per layer pass (dispatch), ``call_overhead_s`` per call (setting
  inputs, reading outputs), ``compute_efficiency`` ``{"forward": f, "backward": b}``: the share of
  the peak that layers reach forward and in backward passes, and optionally per kernel class
  (``forward_<class>``, ``forward_<class>_int8``: :mod:`devices.kernels`); measured on ``host``;
- ``energy``: ``scale`` and the scaled figures ``pj_per_op`` ``{precision: figure}``,
  ``sram_pj_per_byte``, ``dram_pj_per_byte``;
- ``battery_joules``: null for mains-powered machines;
- ``runtime``: how the interpreter uses memory (``fixed_bytes``, ``weight_copies``: multiples of
  the constant weights it keeps beside the model file, e.g. XNNPACK's packed copies;
  ``arena_factor``: its working memory over the ideal (liveness) peak of a call's tensors;
  ``train_subgraph_bytes``: what the delegate keeps for each train signature that runs the
  frozen front on images, allocated for every subgraph when the interpreter is first used;
  ``weight_copies_int8`` (optional): the same for int8 weights; ``training_artifact_bytes``
  (optional): what it keeps for an artifact with variables (initialisation subgraph, resource
  variables); ``int8_layer_bytes`` (optional): per int8 layer of every subgraph;
  ``frozen_weights_in_ram``: false where weights execute in place from flash; ``node_bytes``,
  ``prepared_node_bytes``, ``delegated_node_bytes`` (optional): per operator node of the model
  file, per node of a subgraph that has run, extra per node the delegate takes, used when the
  planner reads the file's counts instead of the layer-graph proxies), or the string ``"host"``
  to use the figures measured on the host with the same LiteRT library;
- ``kernel_costs`` (optional): seconds per builtin node (``node_s``) and per output element of
  builtin kernels by class (``broadcast_element_s``, ``copy_element_s``, ``memcpy_element_s``,
  ``elementwise_element_s``) and of XNNPACK's nodes other than layers (``delegated_element_s``)
  and per byte of a call's inputs and outputs copied across the API
  (``io_byte_s``) and per input and per output tensor (``io_input_s``, ``io_output_s``), added to the roofline when
  the model file's counts are known.

References:
  M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014 (45 nm).
  S. Han, H. Mao, W. Dally, "Deep Compression", ICLR 2016, Table 1 (the same 45 nm figures).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROFILE_FORMAT = "pocketfit-profile/1"
PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
PRECISIONS = ("fp32", "fp16", "int8")

# Horowitz, ISSCC 2014, 45 nm, 0.9 V (Deep Compression Table 1 quotes the 32-bit rows).
# A multiply-accumulate is one multiply and one add, two ops.
HOROWITZ_45NM_PJ = {
    "fp32_add": 0.9,
    "fp32_mult": 3.7,
    "fp16_add": 0.4,
    "fp16_mult": 1.1,
    "int8_add": 0.03,
    "int8_mult": 0.2,
    "sram_32bit": 5.0,
    "dram_32bit": 640.0,
}


def horowitz_pj_per_op(precision: str) -> float:
    """Energy of one op (half a multiply-accumulate) at 45 nm, in pJ."""
    return (HOROWITZ_45NM_PJ[f"{precision}_add"] + HOROWITZ_45NM_PJ[f"{precision}_mult"]) / 2


class ProfileError(ValueError):
    """A profile file that is missing, unreadable or invalid; the message names file and field."""


@dataclasses.dataclass(frozen=True)
class Runtime:
    """How the interpreter spends memory beside the model's own tensors."""

    fixed_bytes: int
    weight_copies: float
    frozen_weights_in_ram: bool = True
    arena_factor: float = 1.0
    train_subgraph_bytes: int = 0
    source: str = ""
    weight_copies_int8: float | None = None
    training_artifact_bytes: int = 0
    int8_layer_bytes: int = 0
    # Per operator node of the model file (every subgraph, built at load), per node of a subgraph
    # once it has run (prepared: arena plan, kernel state), and extra per node the default
    # delegate takes over; when known and the file was read they replace the
    # training_artifact_bytes / train_subgraph_bytes proxies (see devices.planner).
    node_bytes: int = 0
    delegated_node_bytes: int = 0
    prepared_node_bytes: int = 0

    def copies(self, bits: int) -> float:
        """Copies the runtime keeps of constant weights stored at ``bits``."""
        if bits <= 8 and self.weight_copies_int8 is not None:
            return self.weight_copies_int8
        return self.weight_copies


@dataclasses.dataclass(frozen=True)
class Profile:
    """A device class, with the figures the planner and the estimators need."""

    name: str
    description: str
    memory_bytes: int
    sram_bytes: int
    flash_bytes: int | None
    precisions: tuple[str, ...]
    peak_ops_per_s: Mapping[str, float]
    dram_bandwidth_bytes_per_s: float
    sram_bandwidth_bytes_per_s: float
    op_overhead_s: float
    call_overhead_s: float
    compute_efficiency: Mapping[str, float]
    energy_scale: float
    pj_per_op: Mapping[str, float]
    sram_pj_per_byte: float
    dram_pj_per_byte: float
    battery_joules: float | None
    runtime: Runtime
    path: Path
    sources: Mapping[str, str]
    measured: str | None = None
    # Seconds per builtin node and per output element of builtin kernels by class (see
    # devices.tflite_file.KERNEL_CLASS); used with a model file's counts. Optional.
    kernel_costs: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def supports(self, precision: str) -> bool:
        return precision in self.precisions

    def compute_precision(self, bits: int) -> str:
        """The arithmetic this device uses for weights stored at ``bits``."""
        wanted = "int8" if bits <= 8 else "fp16" if bits <= 16 else "fp32"
        if wanted in self.precisions:
            return wanted
        for p in ("int8", "fp16", "fp32") if wanted == "int8" else ("fp16", "fp32", "int8"):
            if p in self.precisions:
                return p
        return self.precisions[0]


class _Reader:
    """Reads figures out of one profile file, naming the file and field in every error."""

    def __init__(self, data: Mapping[str, Any], path: Path) -> None:
        self.data = data
        self.path = path
        self.sources: dict[str, str] = {}

    def fail(self, field: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.path}: field {field!r}: {problem}")

    def figure(self, field: str, node: Any = None, *, nullable: bool = False) -> Any:
        if node is None:
            if field not in self.data:
                return self._missing(field, nullable)
            node = self.data[field]
        if node is None and nullable:
            return None
        if not isinstance(node, Mapping) or "value" not in node:
            raise self.fail(field, 'expected {"value": ..., "source": "..."}.')
        source = node.get("source")
        if not isinstance(source, str) or not source.strip():
            raise self.fail(field, "every figure needs a non-empty 'source'.")
        self.sources[field] = source
        if node["value"] is None and not nullable:
            raise self.fail(field, "value is null.")
        return node["value"]

    def _missing(self, field: str, nullable: bool) -> None:
        if nullable:
            return None
        raise self.fail(field, "missing.")

    def number(
        self, field: str, node: Any = None, *, nullable: bool = False, positive: bool = True
    ) -> float | None:
        value = self.figure(field, node, nullable=nullable)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.fail(field, f"expected a number, got {value!r}.")
        if value < 0 or (positive and value == 0):
            raise self.fail(field, f"must be {'> 0' if positive else '>= 0'}, got {value}.")
        return float(value)

    def per_precision(self, field: str, precisions: tuple[str, ...]) -> dict[str, float]:
        node = self.data.get(field) if field in self.data else None
        if not isinstance(node, Mapping):
            raise self.fail(field, "expected an object {precision: figure}.")
        out: dict[str, float] = {}
        for p in precisions:
            if p not in node:
                raise self.fail(f"{field}.{p}", "missing.")
            out[p] = self.number(f"{field}.{p}", node[p])  # type: ignore[assignment]
        return out


def _efficiency(r: _Reader) -> dict[str, float]:
    out = r.per_precision("compute_efficiency", ("forward", "backward"))
    node = r.data["compute_efficiency"]
    for key in sorted(set(node) - {"forward", "backward"}):
        value = r.number(f"compute_efficiency.{key}", node[key])
        if value is not None:
            if value > 1.0:
                raise r.fail(
                    f"compute_efficiency.{key}", f"a share of the peak, must be <= 1, got {value}."
                )
            out[key] = value
    return out


KERNEL_COSTS = (
    "node_s",
    "broadcast_element_s",
    "copy_element_s",
    "memcpy_element_s",
    "elementwise_element_s",
    "delegated_element_s",
    "io_byte_s",
    "io_input_s",
    "io_output_s",
)


def _kernel_costs(r: _Reader) -> dict[str, float]:
    node = r.data.get("kernel_costs")
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise r.fail("kernel_costs", "expected an object {name: figure}.")
    out = {}
    for key in sorted(node):
        if key not in (*KERNEL_COSTS, "delegated_node_s"):
            raise r.fail(f"kernel_costs.{key}", f"unknown; expected {', '.join(KERNEL_COSTS)}.")
        out[key] = r.number(f"kernel_costs.{key}", node[key], positive=False)
    return out  # type: ignore[return-value]


def _read_json(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise ProfileError(f"{path} is a directory; give a profile file (.json) or a name.")
    if not path.is_file():
        raise ProfileError(f"{path}: profile file not found.")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ProfileError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a JSON object.")
    return data


def _runtime(r: _Reader, node: Any) -> Runtime:
    if node == "host":
        host = load_profile(PROFILE_DIR / "host.json")
        rt = host.runtime
        return dataclasses.replace(rt, source=f"host profile ({host.measured or 'unmeasured'})")
    if not isinstance(node, Mapping):
        raise r.fail("runtime", 'expected an object or the string "host".')
    fixed = r.number("runtime.fixed_bytes", node.get("fixed_bytes"), positive=False)
    copies = r.number("runtime.weight_copies", node.get("weight_copies"), positive=False)
    copies8 = r.number(
        "runtime.weight_copies_int8", node.get("weight_copies_int8"), nullable=True, positive=False
    )
    factor = r.number("runtime.arena_factor", node.get("arena_factor"))
    per_train = r.number(
        "runtime.train_subgraph_bytes", node.get("train_subgraph_bytes"), positive=False
    )
    in_ram = r.figure("runtime.frozen_weights_in_ram", node.get("frozen_weights_in_ram"))
    if not isinstance(in_ram, bool):
        raise r.fail("runtime.frozen_weights_in_ram", f"expected true or false, got {in_ram!r}.")
    if factor is not None and factor < 1.0:
        raise r.fail("runtime.arena_factor", f"must be >= 1 (the ideal arena), got {factor}.")
    extra = {}
    for key in (
        "training_artifact_bytes",
        "int8_layer_bytes",
        "node_bytes",
        "delegated_node_bytes",
        "prepared_node_bytes",
    ):
        value = r.number(f"runtime.{key}", node.get(key), nullable=True, positive=False)
        extra[key] = int(value or 0)
    return Runtime(
        **extra,
        fixed_bytes=int(fixed or 0),
        weight_copies=float(copies or 0.0),
        frozen_weights_in_ram=in_ram,
        arena_factor=float(factor or 1.0),
        train_subgraph_bytes=int(per_train or 0),
        weight_copies_int8=copies8,
        source="profile",
    )


def load_profile(name_or_path: str | os.PathLike[str]) -> Profile:
    """Reads and validates a profile by name (``phone_cpu``) or path.

    Raises:
      ProfileError: missing file, bad JSON, or a missing, negative or unsourced figure; the
        message names the file and the field.
    """
    raw = Path(name_or_path)
    path = raw if raw.suffix == ".json" or raw.parent != Path() else PROFILE_DIR / f"{raw}.json"
    if not path.is_file() and raw.suffix != ".json" and raw.parent == Path():
        raise ProfileError(
            f"unknown profile {str(name_or_path)!r}; known: {', '.join(profile_names())}."
        )
    data = _read_json(path)
    r = _Reader(data, path)
    if data.get("format") != PROFILE_FORMAT:
        raise r.fail("format", f"{data.get('format')!r}, expected {PROFILE_FORMAT!r}.")
    for key in ("name", "description"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise r.fail(key, "missing or not a string.")
    precisions = r.figure("precisions")
    if (
        not isinstance(precisions, list)
        or not precisions
        or any(p not in PRECISIONS for p in precisions)
    ):
        raise r.fail("precisions", f"expected a non-empty list drawn from {', '.join(PRECISIONS)}.")
    precisions = tuple(precisions)
    energy = data.get("energy")
    if not isinstance(energy, Mapping):
        raise r.fail("energy", "missing or not an object.")
    er = _Reader(energy, path)
    er.fail = lambda field, problem: ProfileError(f"{path}: field 'energy.{field}': {problem}")  # type: ignore[method-assign]
    if "runtime" not in data:
        raise r.fail("runtime", 'missing (an object, or "host").')
    runtime = _runtime(r, data["runtime"])
    flash = r.number("flash_bytes", nullable=True)
    battery = r.number("battery_joules", nullable=True)
    profile = Profile(
        name=data["name"],
        description=data["description"],
        memory_bytes=int(r.number("memory_bytes")),  # type: ignore[arg-type]
        sram_bytes=int(r.number("sram_bytes", positive=False)),  # type: ignore[arg-type]
        flash_bytes=None if flash is None else int(flash),
        precisions=precisions,
        peak_ops_per_s=r.per_precision("peak_ops_per_s", precisions),
        dram_bandwidth_bytes_per_s=r.number("dram_bandwidth_bytes_per_s"),  # type: ignore[arg-type]
        sram_bandwidth_bytes_per_s=r.number("sram_bandwidth_bytes_per_s"),  # type: ignore[arg-type]
        op_overhead_s=r.number("op_overhead_s", positive=False),  # type: ignore[arg-type]
        call_overhead_s=r.number("call_overhead_s", positive=False),  # type: ignore[arg-type]
        compute_efficiency=_efficiency(r),
        energy_scale=er.number("scale"),  # type: ignore[arg-type]
        pj_per_op=er.per_precision("pj_per_op", precisions),
        sram_pj_per_byte=er.number("sram_pj_per_byte"),  # type: ignore[arg-type]
        dram_pj_per_byte=er.number("dram_pj_per_byte"),  # type: ignore[arg-type]
        battery_joules=battery,
        runtime=runtime,
        path=path,
        sources={**r.sources, **{f"energy.{k}": v for k, v in er.sources.items()}},
        measured=data.get("measured"),
        kernel_costs=_kernel_costs(r),
    )
    if profile.sram_bytes > profile.memory_bytes and profile.flash_bytes is None:
        raise r.fail("sram_bytes", "larger than memory_bytes.")
    return profile


def profile_names() -> list[str]:
    """Names of the profiles shipped in ``devices/profiles/``."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def load_profiles() -> dict[str, Profile]:
    """Every shipped profile, validated."""
    return {name: load_profile(name) for name in profile_names()}
