"""Device side: the layer graph and model file of an artifact directory, and its memory plan.

An artifact directory holds ``model.tflite`` and ``manifest.json``; the manifest's ``"graph"`` is
a :class:`devices.Graph` in its ``to_dict`` form (export writes it; see :mod:`devices.graph`).
Reading needs only the standard library: no interpreter is created.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from devices.contract import MANIFEST, MODEL, ArtifactError
from devices.graph import Graph, GraphError
from devices.planner import MemoryPlan, plan_signature
from devices.profiles import Profile
from devices.tflite_file import ModelFileError, ModelStats, read_model_stats


def load_graph(artifact: str | os.PathLike[str]) -> Graph:
    """The layer graph in ``<artifact>/manifest.json``."""
    base = Path(artifact)
    if not base.is_dir():
        raise ArtifactError(f"{base}: not an artifact directory.")
    path = base / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{path}: not found (an artifact has {MODEL} and {MANIFEST}).")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(data, dict) or "graph" not in data:
        raise ArtifactError(f"{path}: no 'graph' entry (the planner's layer graph, devices.Graph).")
    try:
        return Graph.from_dict(data["graph"], where="graph")
    except GraphError as err:
        raise ArtifactError(f"{path}: {err}") from err


def model_file(artifact: str | os.PathLike[str]) -> Path:
    path = Path(artifact) / MODEL
    if not path.is_file():
        raise ArtifactError(f"{path}: not found.")
    return path


def model_stats(artifact: str | os.PathLike[str]) -> ModelStats:
    """The node counts of the artifact's model file (:func:`devices.read_model_stats`)."""
    path = model_file(artifact)
    try:
        return read_model_stats(path)
    except ModelFileError as err:
        raise ArtifactError(str(err)) from err


def plan_artifact(artifact: str | os.PathLike[str], profile: Profile) -> dict[str, MemoryPlan]:
    """The memory plan of every signature in the artifact, with the real model file's size and
    node counts."""
    graph = load_graph(artifact)
    size = model_file(artifact).stat().st_size
    stats = model_stats(artifact)
    return {
        s.name: plan_signature(graph, s, profile, model_bytes=size, model_stats=stats)
        for s in graph.signatures
    }
