"""The layer-graph schema: round trip, hand-counted parameters, errors that name the field."""

from __future__ import annotations

import copy

import pytest

from devices import Graph, GraphError, LayerSpec, SignatureSpec


def mlp() -> Graph:
    """784 -> 32 (backbone, the embedding) -> 10 (head); head and biases trainable."""
    return Graph(
        name="mlp",
        input_shape=(784,),
        layers=(
            LayerSpec(
                "fc1",
                "dense",
                (784,),
                (32,),
                784 * 32,
                32,
                bits=8,
                act_bits=8,
                macs=784 * 32,
                train={"head_biases": "bias"},
            ),
            LayerSpec(
                "head",
                "dense",
                (32,),
                (10,),
                320,
                10,
                macs=320,
                train={"head": "all", "head_biases": "all"},
            ),
        ),
        embedding_layer="fc1",
        scopes=("head", "head_biases"),
        signatures=(
            SignatureSpec("embed", "embed", 1, None, "images", 8),
            SignatureSpec("train", "train", 4, "head", "embeddings"),
            SignatureSpec("train_head_biases", "train", 4, "head_biases", "images"),
        ),
    )


def test_round_trip_is_exact() -> None:
    g = mlp()
    assert Graph.from_dict(g.to_dict()) == g
    assert g.to_dict()["format"] == "pocketfit-graph/1"


def test_hand_counted_parameters() -> None:
    g = mlp()
    assert g.trainable_params("head") == 330
    assert g.trainable_params("head_biases") == 330 + 32
    assert g.variable_params() == 330 + 32  # union over scopes
    assert g.train_input("head") == "embeddings"
    assert g.train_input("head_biases") == "images"
    assert [layer.name for layer in g.backbone] == ["fc1"]
    assert g.layers[0].stored_bytes() == 784 * 32 + 4 * 32  # int8 kernel, 32-bit biases


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("embedding_layer"), "graph.embedding_layer: missing"),
        (lambda d: d["layers"][0].pop("output_shape"), "graph.layers[0].output_shape: missing"),
        (
            lambda d: d["layers"][1].update(kernel_params=-1),
            "graph.layers[1].kernel_params: must be >= 0",
        ),
        (lambda d: d["layers"][0].update(op="lstm"), "graph.layers[0].op: 'lstm' is not one of"),
        (lambda d: d["layers"][1]["train"].update(head="weights"), "graph.layers[1].train.head"),
        (lambda d: d["signatures"][1].update(kind="fit"), "graph.signatures[1].kind"),
        (lambda d: d.update(format="pocketfit-graph/0"), "graph.format"),
        (lambda d: d["signatures"][1].update(input="images"), "input must be 'embeddings'"),
        (lambda d: d["layers"][1]["train"].update(wide="all"), "not in scopes"),
        (lambda d: d.update(embedding_layer="fc9"), "embedding_layer 'fc9' is not a layer"),
    ],
)
def test_invalid_graphs_name_the_field(edit, message: str) -> None:
    data = copy.deepcopy(mlp().to_dict())
    edit(data)
    with pytest.raises(GraphError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Graph.from_dict(data)
