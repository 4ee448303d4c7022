"""A routed model's LiteRT file: the device runs the trunk and only the branch its router picks."""

from __future__ import annotations

import jax
import numpy as np

from export.tree import routed_tflite
from personalize import RoutedClassifier
from pretrain.models import build_model


def test_device_runs_one_branch_and_matches_jax() -> None:
    model = build_model(
        "lenet5_tree", branches=3, trunk_features=4, branch_features=4, branch_hidden=8
    )
    x = np.asarray(jax.random.uniform(jax.random.key(1), (6, 28, 28, 1)), np.float32)
    variables = model.init(jax.random.key(0), x)
    device = RoutedClassifier(routed_tflite(model, variables, (28, 28, 1), batch=1))
    assert device.branches == 3
    _, route = model.apply(variables, x, method="trunk")
    want = np.asarray(model.apply(variables, x))
    for i, image in enumerate(x):
        scores, branch = device.scores(image)
        assert branch == int(np.argmax(route[i]))
        np.testing.assert_allclose(scores, want[i], rtol=1e-4, atol=1e-5)  # float32, other kernels
    assert device.invocations["trunk"] == 6
    assert sum(v for k, v in device.invocations.items() if k.startswith("branch_")) == 6
