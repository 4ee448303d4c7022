"""The server-side graph builder on the Caffe LeNet-5: shapes, parameters and MACs by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from devices import Graph, plan_signature
from devices.profiles import Runtime
from devices.server import graph_from_flax, signatures_for
from pretrain import build_model


def test_lenet5_layers_by_hand() -> None:
    model = build_model("lenet5")
    x = jnp.zeros((1, 28, 28, 1))
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    graph = graph_from_flax(
        model,
        variables,
        x,
        name="lenet5",
        scopes={
            "head": {"backbone/fc2": "all"},
            "last_block": {"backbone/fc1": "all", "backbone/fc2": "all"},
        },
    )
    rows = [(x.name, x.op, x.input_shape, x.output_shape, x.params, x.macs) for x in graph.layers]
    assert rows == [
        ("backbone/conv1", "conv", (28, 28, 1), (24, 24, 20), 520, 24 * 24 * 20 * 25),
        ("backbone/conv2", "conv", (12, 12, 20), (8, 8, 50), 25_050, 8 * 8 * 50 * 500),
        ("backbone/fc1", "dense", (800,), (500,), 400_500, 800 * 500),
        ("backbone/fc2", "dense", (500,), (10,), 5_010, 5_000),
    ]
    assert sum(x.params for x in graph.layers) == 431_080  # Deep Compression, table 3
    assert graph.embedding_layer == "backbone/fc2"
    assert graph.trainable_params("last_block") == 405_510
    # The graph is plain data: it survives JSON and plans the same.
    graph = graph.with_signatures(signatures_for(graph, train_batch=5))
    same = Graph.from_dict(graph.to_dict())
    rt = Runtime(0, 0.0)
    assert plan_signature(same, "train_last_block", runtime=rt) == plan_signature(
        graph, "train_last_block", runtime=rt
    )


def test_embednet_blocks_are_depthwise_and_pointwise() -> None:
    model = build_model("embednet", stem_width=8, widths=(16, 32), strides=(2, 2), embedding_dim=32)
    x = jnp.zeros((1, 32, 32, 1))
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    graph = graph_from_flax(model, variables, x, name="embednet")
    rows = [(x.name, x.op, x.output_shape, x.params, x.macs) for x in graph.layers]
    assert rows == [
        ("backbone/stem", "conv", (16, 16, 8), 80, 16 * 16 * 8 * 9),
        ("backbone/block1/depthwise", "depthwise_conv", (8, 8, 8), 80, 8 * 8 * 8 * 9),
        ("backbone/block1/pointwise", "conv", (8, 8, 16), 144, 8 * 8 * 8 * 16),
        ("backbone/block2/depthwise", "depthwise_conv", (4, 4, 16), 160, 4 * 4 * 16 * 9),
        ("backbone/block2/pointwise", "conv", (4, 4, 32), 544, 4 * 4 * 16 * 32),
        ("backbone/embed", "dense", (32,), 1056, 32 * 32),
    ]
