"""Fixtures of the devices tests: a small graph whose every figure is counted by hand."""

from __future__ import annotations

import pytest

from devices import Graph, LayerSpec, SignatureSpec


def mlp() -> Graph:
    """784 -(fc1, int8)-> 32 -(fc2)-> 16 = embedding -(head)-> 10. Scopes: head, last_block."""
    return Graph(
        name="mlp",
        input_shape=(784,),
        layers=(
            LayerSpec("fc1", "dense", (784,), (32,), 25088, 32, bits=8, act_bits=8, macs=25088),
            LayerSpec(
                "fc2",
                "dense",
                (32,),
                (16,),
                512,
                16,
                bits=8,
                act_bits=8,
                macs=512,
                train={"last_block": "all"},
            ),
            LayerSpec(
                "head",
                "dense",
                (16,),
                (10,),
                160,
                10,
                macs=160,
                train={"head": "all", "last_block": "all"},
            ),
        ),
        embedding_layer="fc2",
        scopes=("head", "last_block"),
        signatures=(
            SignatureSpec("embed", "embed", 1, None, "images", 8),
            SignatureSpec("train", "train", 5, "head", "embeddings"),
            SignatureSpec("train_last_block", "train", 5, "last_block", "images"),
            SignatureSpec("get_weights", "get_weights", 1, "last_block", "embeddings"),
        ),
    )


@pytest.fixture(name="mlp")
def mlp_fixture() -> Graph:
    """The hand-counted MLP of :func:`mlp`."""
    return mlp()
