"""Routed models (a trunk, a router and branches of which one runs): their contract and costs.

A conditional network's file holds one signature per node: ``trunk`` (images -> the trunk's
``features`` and the router's ``route`` logits) and ``branch_<i>`` (``features`` -> ``scores``);
the device runs the trunk, takes the argmax of ``route`` and runs that branch alone.

Its cost is described with the plain layer graph (``pocketfit-graph/1``, every layer of every
branch) plus which layers are the trunk and which each branch: :class:`RoutedGraph`. The
estimator and planner then see the truth of a routed call: the multiply-accumulates and the
latency of the path taken (trunk + one branch, an ordinary chain of layers that
:func:`devices.estimate.estimate` prices), while the weights of every branch stay resident (the
next image may take another branch) and the activation arena is the largest path's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from devices.estimate import Estimate, estimate
from devices.graph import Graph, GraphError, LayerSpec, SignatureSpec
from devices.planner import inference_peak
from devices.profiles import Profile

# Signatures and tensor names of a routed model (besides devices.contract's IMAGES, FEATURES,
# SCORES).
TRUNK, ROUTE, BRANCH_PREFIX = "trunk", "route", "branch_"


def branch_signature(index: int) -> str:
    """The signature of branch ``index`` (``branch_0``, ``branch_1``, ...)."""
    return f"{BRANCH_PREFIX}{index}"


@dataclasses.dataclass(frozen=True)
class RoutedGraph:
    """A layer graph whose layers split into a trunk (with the router) and branches.

    Attributes:
      graph: every layer (the trunk's, then each branch's), in the ordinary graph format.
      trunk: names of the layers that always run (trunk and router), in execution order.
      branches: per branch, the names of its layers in execution order.
    """

    graph: Graph
    trunk: tuple[str, ...]
    branches: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        names = [layer.name for layer in self.graph.layers]
        listed = [*self.trunk, *(n for b in self.branches for n in b)]
        if not self.branches:
            raise GraphError(f"routed graph {self.graph.name!r}: no branches.")
        unknown = sorted(set(listed) - set(names))
        missing = sorted(set(names) - set(listed))
        twice = sorted({n for n in listed if listed.count(n) > 1})
        if unknown or missing or twice:
            raise GraphError(
                f"routed graph {self.graph.name!r}: every layer must be in the trunk or in exactly "
                f"one branch (unknown {unknown}, unplaced {missing}, twice {twice})."
            )

    @classmethod
    def from_layers(
        cls, name: str, layers: Sequence[LayerSpec], input_shape: Sequence[int]
    ) -> RoutedGraph:
        """Splits ``layers`` by name: ``<prefix>branch_<i>/...`` is branch i, the rest the trunk."""

        def branch_of(layer: LayerSpec) -> int | None:
            for part in layer.name.split("/"):
                if part.startswith(BRANCH_PREFIX) and part[len(BRANCH_PREFIX) :].isdigit():
                    return int(part[len(BRANCH_PREFIX) :])
            return None

        count = 1 + max((b for b in map(branch_of, layers) if b is not None), default=-1)
        trunk = tuple(layer.name for layer in layers if branch_of(layer) is None)
        branches = tuple(
            tuple(layer.name for layer in layers if branch_of(layer) == i) for i in range(count)
        )
        graph = Graph(name, tuple(input_shape), tuple(layers), embedding_layer=layers[-1].name)
        return cls(graph, trunk, branches)

    def path(self, branch: int) -> Graph:
        """The chain that runs when ``branch`` is taken: trunk + that branch, one ``embed`` call
        at batch 1 (what the estimator prices)."""
        if not 0 <= branch < len(self.branches):
            raise GraphError(
                f"routed graph {self.graph.name!r}: branch {branch} of {len(self.branches)}."
            )
        keep = (*self.trunk, *self.branches[branch])
        layers = tuple(self.graph.layers[self.graph.index(n)] for n in keep)
        sig = SignatureSpec(name="embed", kind="embed", batch=1, scope=None, input="images")
        return Graph(
            f"{self.graph.name}/{branch_signature(branch)}",
            self.graph.input_shape,
            layers,
            embedding_layer=layers[-1].name,
            signatures=(sig,),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "graph": self.graph.to_dict(),
            "trunk": list(self.trunk),
            "branches": [list(b) for b in self.branches],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutedGraph:
        return cls(
            Graph.from_dict(data["graph"]),
            tuple(data["trunk"]),
            tuple(tuple(b) for b in data["branches"]),
        )


@dataclasses.dataclass(frozen=True)
class RoutedCost:
    """What one routed call costs (the worst branch) and what stays resident.

    Attributes:
      taken_macs: multiply-accumulates of the trunk and the largest branch (one image).
      all_macs: of every layer (what a model computing every branch would execute).
      resident_weight_bytes: stored bytes of every layer's weights (all branches).
      activation_peak_bytes: the largest path's forward arena (one layer's input + output).
      latency_s: the estimator's latency of the slowest taken path at batch 1.
    """

    taken_macs: int
    all_macs: int
    resident_weight_bytes: int
    activation_peak_bytes: int
    latency_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def path_estimates(routed: RoutedGraph, profile: Profile) -> list[Estimate]:
    """The estimator's figures of one call along each branch's path (batch 1)."""
    return [estimate(routed.path(i), "embed", profile) for i in range(len(routed.branches))]


def routed_cost(routed: RoutedGraph, profile: Profile) -> RoutedCost:
    """Taken-path MACs and latency, all-branch weights: the routed model's cost on ``profile``."""
    paths = [routed.path(i) for i in range(len(routed.branches))]
    return RoutedCost(
        taken_macs=max(sum(layer.macs for layer in p.layers) for p in paths),
        all_macs=sum(layer.macs for layer in routed.graph.layers),
        resident_weight_bytes=sum(layer.stored_bytes() for layer in routed.graph.layers),
        activation_peak_bytes=max(inference_peak(p.layers, 1) for p in paths),
        latency_s=max(e.latency_s for e in path_estimates(routed, profile)),
    )
