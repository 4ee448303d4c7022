"""The layer graph: what the planner and the estimators read, as plain JSON-ready data.

Export writes ``Graph.to_dict()`` under the key ``"graph"`` of an artifact's ``manifest.json``;
the server side builds the same object from a Flax model (:func:`devices.server.graph_from_flax`), so
one planner serves both. Format ``pocketfit-graph/1``:

``{"format": "pocketfit-graph/1", "name": str,``
`` "input": {"shape": [H, W, C], "dtype": "float32"}``            one example, no batch axis
`` "embedding_layer": str``                                      last layer of the backbone
`` "features_layer": str | null``                               last layer of the frozen front
`` "scopes": [str, ...]``                                       training scopes, narrow -> wide
`` "optimizer_slots": int``                                     0 plain SGD, 1 SGD with momentum
`` "layers": [``                                                execution order
``   {"name", "op", "input_shape", "output_shape",``              shapes of one example
``    "kernel_params", "bias_params",``                            multiplicative weights, biases
``    "bits",``        stored precision of the kernel when frozen: 32, 16, 8 (int8), 1-8 (codebook)
``    "act_bits",``    precision of the layer's output in the inference (embed) path: 32, 16, 8
``    "macs",``        multiply-accumulates of one example's forward pass
``    "train": {scope: "all" | "bias"}``                           absent scope: frozen there
``   }, ...],``
`` "signatures": [``                                             what the artifact's model runs
``   {"name", "kind", "batch", "scope", "input", "frozen_bits"}, ...]}``

``kind`` is one of ``embed`` (backbone through ``embedding_layer``, weights constant),
``refine`` (from ``features_layer`` through ``embedding_layer`` on the trainable variables),
``train`` (one SGD step on ``scope``: forward, backward, update), ``infer`` (head only),
``get_weights`` / ``set_weights`` (copy the variables out / in). ``input`` is ``"images"`` or
``"embeddings"``: a train signature takes embeddings iff every layer its scope trains comes after
``embedding_layer``. ``frozen_bits`` is the precision of the constant weights inside that
signature (an int8 ``embed`` has 8; a float train step that runs the frozen front has 32).
Biases are stored as 32-bit values at every precision (int32 for int8 layers, as TFLite does).
Activations inside train steps are float32.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

GRAPH_FORMAT = "pocketfit-graph/1"
OPS = (
    "conv",
    "depthwise_conv",
    "dense",
    "pool",
    "activation",
    "normalize",
    "reshape",
    "add",
    "loss",
    "other",
)
KINDS = ("embed", "refine", "train", "infer", "get_weights", "set_weights")
INPUTS = ("images", "features", "embeddings")
TRAIN_MODES = ("all", "bias")


class GraphError(ValueError):
    """A layer graph that does not follow the schema; the message names the field."""


def _int(value: Any, where: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GraphError(f"{where}: expected an integer, got {value!r}.")
    if value < minimum:
        raise GraphError(f"{where}: must be >= {minimum}, got {value}.")
    return value


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise GraphError(f"{where}: expected a non-empty list of dimensions, got {value!r}.")
    return tuple(_int(v, f"{where}[{i}]", minimum=1) for i, v in enumerate(value))


def _str(value: Any, where: str, choices: Sequence[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise GraphError(f"{where}: expected a non-empty string, got {value!r}.")
    if choices is not None and value not in choices:
        raise GraphError(f"{where}: {value!r} is not one of {', '.join(choices)}.")
    return value


def _need(data: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise GraphError(f"{where}: expected an object, got {type(data).__name__}.")
    if key not in data:
        raise GraphError(f"{where}.{key}: missing.")
    return data[key]


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One layer: shapes of one example, parameter counts, stored precision, training scopes."""

    name: str
    op: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    kernel_params: int = 0
    bias_params: int = 0
    bits: int = 32
    act_bits: int = 32
    macs: int = 0
    train: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def params(self) -> int:
        return self.kernel_params + self.bias_params

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def output_size(self) -> int:
        return math.prod(self.output_shape)

    def trainable_params(self, scope: str) -> int:
        """Scalars this layer trains in ``scope`` (0 when frozen there)."""
        mode = self.train.get(scope)
        if mode == "all":
            return self.params
        if mode == "bias":
            return self.bias_params
        return 0

    def stored_bytes(self, bits: int | None = None) -> int:
        """Bytes of the frozen weights: the kernel at ``bits`` (default: stored), biases 32-bit."""
        b = self.bits if bits is None else bits
        return math.ceil(self.kernel_params * b / 8) + 4 * self.bias_params

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "kernel_params": self.kernel_params,
            "bias_params": self.bias_params,
            "bits": self.bits,
            "act_bits": self.act_bits,
            "macs": self.macs,
            "train": dict(self.train),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "layer") -> LayerSpec:
        train = data.get("train", {}) if isinstance(data, Mapping) else {}
        if not isinstance(train, Mapping):
            raise GraphError(f"{where}.train: expected an object scope -> mode, got {train!r}.")
        return cls(
            name=_str(_need(data, "name", where), f"{where}.name"),
            op=_str(_need(data, "op", where), f"{where}.op", OPS),
            input_shape=_shape(_need(data, "input_shape", where), f"{where}.input_shape"),
            output_shape=_shape(_need(data, "output_shape", where), f"{where}.output_shape"),
            kernel_params=_int(data.get("kernel_params", 0), f"{where}.kernel_params"),
            bias_params=_int(data.get("bias_params", 0), f"{where}.bias_params"),
            bits=_int(data.get("bits", 32), f"{where}.bits", minimum=1),
            act_bits=_int(data.get("act_bits", 32), f"{where}.act_bits", minimum=1),
            macs=_int(data.get("macs", 0), f"{where}.macs"),
            train={
                _str(k, f"{where}.train key"): _str(v, f"{where}.train.{k}", TRAIN_MODES)
                for k, v in train.items()
            },
        )


@dataclasses.dataclass(frozen=True)
class SignatureSpec:
    """One LiteRT signature of an artifact, as the planner sees it."""

    name: str
    kind: str
    batch: int = 1
    scope: str | None = None
    input: str = "images"
    frozen_bits: int = 32

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "signature") -> SignatureSpec:
        scope = data.get("scope") if isinstance(data, Mapping) else None
        return cls(
            name=_str(_need(data, "name", where), f"{where}.name"),
            kind=_str(_need(data, "kind", where), f"{where}.kind", KINDS),
            batch=_int(data.get("batch", 1), f"{where}.batch", minimum=1),
            scope=None if scope is None else _str(scope, f"{where}.scope"),
            input=_str(data.get("input", "images"), f"{where}.input", INPUTS),
            frozen_bits=_int(data.get("frozen_bits", 32), f"{where}.frozen_bits", minimum=1),
        )


@dataclasses.dataclass(frozen=True)
class Graph:
    """A model as the device sees it: layers in execution order, scopes and signatures."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]
    embedding_layer: str
    scopes: tuple[str, ...] = ()
    signatures: tuple[SignatureSpec, ...] = ()
    optimizer_slots: int = 0
    input_dtype: str = "float32"
    features_layer: str | None = None

    def __post_init__(self) -> None:
        names = [layer.name for layer in self.layers]
        if not names:
            raise GraphError(f"graph {self.name!r}: layers: empty.")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise GraphError(f"graph {self.name!r}: layers: duplicate names {', '.join(dup)}.")
        if self.embedding_layer not in names:
            raise GraphError(
                f"graph {self.name!r}: embedding_layer {self.embedding_layer!r} is not a layer."
            )
        if self.features_layer is not None and (
            self.features_layer not in names
            or names.index(self.features_layer) >= names.index(self.embedding_layer)
        ):
            raise GraphError(
                f"graph {self.name!r}: features_layer {self.features_layer!r} is not a layer "
                f"before the embedding layer."
            )
        for layer in self.layers:
            unknown = sorted(set(layer.train) - set(self.scopes))
            if unknown:
                raise GraphError(
                    f"graph {self.name!r}: layer {layer.name!r}: train names scope(s) "
                    f"{', '.join(unknown)} not in scopes ({', '.join(self.scopes) or 'none'})."
                )
        for sig in self.signatures:
            if sig.kind in ("train", "get_weights", "set_weights") and sig.scope is None:
                raise GraphError(f"graph {self.name!r}: signature {sig.name!r}: scope missing.")
            if sig.scope is not None and sig.scope not in self.scopes:
                raise GraphError(
                    f"graph {self.name!r}: signature {sig.name!r}: unknown scope {sig.scope!r}."
                )
            if sig.kind == "train" and sig.scope is not None:
                wanted = self.train_input(sig.scope)
                if sig.input != wanted:
                    raise GraphError(
                        f"graph {self.name!r}: signature {sig.name!r}: scope {sig.scope!r} "
                        f"trains from layer {self.first_trained(sig.scope)}, so its input must be "
                        f"{wanted!r}."
                    )

    # -- structure --------------------------------------------------------------------------
    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        """Layer name -> its first position (the planner looks layers up per weight piece)."""
        out: dict[str, int] = {}
        for i, layer in enumerate(self.layers):
            out.setdefault(layer.name, i)
        return out

    def index(self, name: str) -> int:
        try:
            return self._positions[name]
        except KeyError:
            raise GraphError(f"graph {self.name!r}: no layer {name!r}.") from None

    @property
    def backbone(self) -> tuple[LayerSpec, ...]:
        return self.layers[: self.index(self.embedding_layer) + 1]

    @property
    def last_block(self) -> tuple[LayerSpec, ...]:
        """Layers after the frozen front up to the embedding (empty without features_layer)."""
        if self.features_layer is None:
            return ()
        return self.layers[self.input_start("features") : self.index(self.embedding_layer) + 1]

    @property
    def head(self) -> tuple[LayerSpec, ...]:
        return self.layers[self.index(self.embedding_layer) + 1 :]

    def first_trained(self, scope: str) -> int:
        """Index of the first layer ``scope`` trains."""
        for i, layer in enumerate(self.layers):
            if layer.trainable_params(scope):
                return i
        raise GraphError(f"graph {self.name!r}: scope {scope!r} trains no layer.")

    def train_input(self, scope: str) -> str:
        """What a train step of ``scope`` reads: ``"embeddings"`` if it trains only layers after
        the embedding, ``"features"`` (the frozen front's output, cached by ``embed``) if only
        layers after ``features_layer``, else ``"images"``."""
        first = self.first_trained(scope)
        if first > self.index(self.embedding_layer):
            return "embeddings"
        if self.features_layer is not None and first > self.index(self.features_layer):
            return "features"
        return "images"

    def input_start(self, source: str) -> int:
        """Index of the first layer a signature reading ``source`` runs."""
        if source == "embeddings":
            return self.index(self.embedding_layer) + 1
        if source == "features":
            if self.features_layer is None:
                raise GraphError(f"graph {self.name!r}: 'features' input but no features_layer.")
            return self.index(self.features_layer) + 1
        return 0

    def trainable_params(self, scope: str) -> int:
        return sum(layer.trainable_params(scope) for layer in self.layers)

    def variable_params(self) -> int:
        """Scalars held as variables: the union over scopes (a layer's biases or all of it)."""
        total = 0
        for layer in self.layers:
            modes = set(layer.train.values())
            total += layer.params if "all" in modes else layer.bias_params if modes else 0
        return total

    def signature(self, name: str) -> SignatureSpec:
        for sig in self.signatures:
            if sig.name == name:
                return sig
        known = ", ".join(s.name for s in self.signatures) or "none"
        raise GraphError(f"graph {self.name!r}: no signature {name!r} (has {known}).")

    def with_signatures(self, signatures: Iterable[SignatureSpec]) -> Graph:
        return dataclasses.replace(self, signatures=tuple(signatures))

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": GRAPH_FORMAT,
            "name": self.name,
            "input": {"shape": list(self.input_shape), "dtype": self.input_dtype},
            "embedding_layer": self.embedding_layer,
            "features_layer": self.features_layer,
            "scopes": list(self.scopes),
            "optimizer_slots": self.optimizer_slots,
            "layers": [layer.to_dict() for layer in self.layers],
            "signatures": [sig.to_dict() for sig in self.signatures],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "graph") -> Graph:
        fmt = _need(data, "format", where)
        if fmt != GRAPH_FORMAT:
            raise GraphError(f"{where}.format: {fmt!r}, expected {GRAPH_FORMAT!r}.")
        inp = _need(data, "input", where)
        layers = _need(data, "layers", where)
        if not isinstance(layers, list):
            raise GraphError(f"{where}.layers: expected a list.")
        sigs = data.get("signatures", [])
        if not isinstance(sigs, list):
            raise GraphError(f"{where}.signatures: expected a list.")
        scopes = data.get("scopes", [])
        if not isinstance(scopes, list):
            raise GraphError(f"{where}.scopes: expected a list.")
        return cls(
            name=_str(_need(data, "name", where), f"{where}.name"),
            input_shape=_shape(_need(inp, "shape", f"{where}.input"), f"{where}.input.shape"),
            input_dtype=_str(inp.get("dtype", "float32"), f"{where}.input.dtype"),
            embedding_layer=_str(_need(data, "embedding_layer", where), f"{where}.embedding_layer"),
            features_layer=(
                None
                if data.get("features_layer") is None
                else _str(data["features_layer"], f"{where}.features_layer")
            ),
            scopes=tuple(_str(s, f"{where}.scopes[{i}]") for i, s in enumerate(scopes)),
            optimizer_slots=_int(data.get("optimizer_slots", 0), f"{where}.optimizer_slots"),
            layers=tuple(
                LayerSpec.from_dict(x, f"{where}.layers[{i}]") for i, x in enumerate(layers)
            ),
            signatures=tuple(
                SignatureSpec.from_dict(x, f"{where}.signatures[{i}]") for i, x in enumerate(sigs)
            ),
        )
