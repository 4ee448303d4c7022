"""The measurement harness on a small converted artifact, and the planner against it (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices import load_graph, load_profile, measure_signature, model_file, plan_signature

pytestmark = pytest.mark.slow
TOLERANCE = 0.15  # the acceptance bound for predicted vs measured peak memory


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """One conversion (~30 s): an EmbedNet-like backbone, cosine head, three training scopes."""
    from devices.server.reference import build_reference

    out = tmp_path_factory.mktemp("ref") / "tiny"
    return build_reference(out, widths=(8, 16, 32), input_hw=32, embed_dim=32, classes=4)


def test_converted_artifact_has_the_contract(artifact: Path) -> None:
    graph = load_graph(artifact)
    names = {s.name for s in graph.signatures}
    assert names == {
        "embed",
        "train",
        "train_head_biases",
        "train_last_block",
        "infer",
        "get_weights",
        "set_weights",
    }
    assert graph.train_input("head") == "embeddings" and graph.train_input("last_block") == "images"


@pytest.mark.parametrize("signature", ["embed", "train", "train_last_block"])
def test_planner_within_tolerance_of_measured_peak(artifact: Path, signature: str) -> None:
    graph = load_graph(artifact)
    size = model_file(artifact).stat().st_size
    measured = measure_signature(model_file(artifact), signature, runs=2)
    plan = plan_signature(graph, signature, load_profile("host"), model_bytes=size)
    assert measured.file_bytes >= 0.9 * size  # the model file is resident once loaded
    assert measured.peak_bytes > size
    assert abs(plan.peak_bytes / measured.peak_bytes - 1) <= TOLERANCE, (plan, measured)
    assert measured.latency_s > 0 and len(measured.latencies_s) == 2


def test_measure_errors_are_clean(artifact: Path, tmp_path: Path) -> None:
    from devices import MeasureError

    with pytest.raises(MeasureError, match="model file not found"):
        measure_signature(tmp_path / "none.tflite", "embed")
    with pytest.raises(MeasureError, match="no signature 'fly'"):
        measure_signature(model_file(artifact), "fly")
