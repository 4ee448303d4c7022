"""The part of EmbedNet a phone may train converts to TFLite builtins, with its training step.

One small conversion (TensorFlow is imported once, for the module): the last block, the pooling,
the feature normalisation and the embedding of a tiny EmbedNet (weight standardisation folded
away; ``impl="fast"``, as export's training signatures use: the grouped convolution's kernel
gradient does not legalize to builtins) plus a cosine head, trained by one SGD-with-weight-decay step on a
CosFace loss, as the widest on-device scope would be (see ``shared/FEASIBILITY.md``).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain.embedding import cosine_logits, margin_softmax_loss
from pretrain.models import build_model
from pretrain.models.embednet import fold_standardization

TINY = {
    "stem_width": 8,
    "widths": (16, 24),
    "strides": (2, 2),
    "embedding_dim": 16,
    "standardize": True,
    "feature_norm": True,
}
CLASSES = 5
FORBIDDEN = ("FLEX", "CUSTOM")


def _op_names(blob: bytes) -> list[str]:
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(blob, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    ops = set()
    for code in model.operatorCodes or []:
        op = max(code.builtinCode, code.deprecatedBuiltinCode)
        if op == schema.BuiltinOperator.CUSTOM:
            ops.add(f"CUSTOM:{code.customCode!r}")
        else:
            ops.add(names.get(op, f"UNKNOWN_{op}"))
    return sorted(ops)


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict:
    tf = pytest.importorskip("tensorflow")
    from jax.experimental import jax2tf

    full = build_model("embednet", **TINY, impl="native")
    x = jnp.zeros((1, 32, 32, 1))
    params = jax.jit(full.init)(jax.random.key(0), x)["params"]
    full, params = fold_standardization(full, params)
    front = full.clone(stop_after=1)
    tail = full.clone(start_block=2, impl="fast")
    feats = front.apply({"params": {k: params[k] for k in ("stem", "block1")}}, x)
    trainable = {
        "tail": {k: params[k] for k in ("block2", "embed")},
        "head": jax.random.normal(jax.random.key(1), (16, CLASSES)) * 0.25,
    }
    leaves, treedef = jax.tree.flatten(trainable)

    def train_step(*args):
        *flat, features, labels, lr, weight_decay = args
        p = jax.tree.unflatten(treedef, flat)

        def loss_fn(p):
            emb = tail.apply({"params": p["tail"]}, features)
            cos = cosine_logits(emb, p["head"])
            return margin_softmax_loss(cos, labels, scale=16.0, margin=0.2).mean()

        loss, grads = jax.value_and_grad(loss_fn)(p)
        new = jax.tree.map(lambda w, g: w - lr * (g + weight_decay * w), p, grads)
        return (*jax.tree.leaves(new), loss)

    batch = 4
    step_tf = jax2tf.convert(train_step, with_gradient=False)
    feature_spec = tf.TensorSpec((batch, *feats.shape[1:]), tf.float32)

    class Trainable(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = [tf.Variable(np.asarray(v)) for v in leaves]

        @tf.function(
            autograph=False,
            input_signature=[
                feature_spec,
                tf.TensorSpec((batch,), tf.int32),
                tf.TensorSpec((), tf.float32),
                tf.TensorSpec((), tf.float32),
            ],
        )
        def train(self, features, labels, lr, weight_decay):
            *new, loss = step_tf(*self.weights, features, labels, lr, weight_decay)
            for var, value in zip(self.weights, new, strict=True):
                var.assign(value)
            return {"loss": loss}

    module = Trainable()
    saved = Path(tmp_path_factory.mktemp("saved"))
    tf.saved_model.save(module, str(saved), signatures={"train": module.train})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["train"])
    converter.experimental_enable_resource_variables = True
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    blob = converter.convert()
    rng = np.random.default_rng(0)
    inputs = {
        "features": rng.random((batch, *feats.shape[1:]), dtype=np.float32),
        "labels": np.array([0, 1, 2, 3], np.int32),
    }
    return {"blob": blob, "inputs": inputs, "step": train_step, "leaves": leaves}


def test_train_step_has_builtin_ops_only(converted: dict) -> None:
    ops = _op_names(converted["blob"])
    assert not [op for op in ops if op.upper().startswith(FORBIDDEN)], ops
    assert "ASSIGN_VARIABLE" in ops  # the step updates its weights in place


def test_train_step_runs_in_litert_like_jax(converted: dict) -> None:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=converted["blob"]).get_signature_runner("train")
    x, y = converted["inputs"]["features"], converted["inputs"]["labels"]
    lr, wd = np.float32(0.01), np.float32(5e-4)
    losses = [float(runner(features=x, labels=y, lr=lr, weight_decay=wd)["loss"]) for _ in range(3)]
    leaves = converted["leaves"]
    expected = []
    for _ in range(3):
        *leaves, loss = converted["step"](*leaves, x, y, lr, wd)
        expected.append(float(loss))
    np.testing.assert_allclose(losses, expected, rtol=1e-4)
    assert losses[-1] < losses[0]


# The float input and output of a full-integer model carry no calibration statistics of their own.
@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")
def test_flip_average_converts_to_int8_builtins_and_agrees(tmp_path: Path) -> None:
    """The whole tiny network with ``flip_average`` (the mirror is REVERSE_V2) as a full-integer
    LiteRT model: builtins only, and within int8 rounding of JAX (cosine, unit embeddings)."""
    tf = pytest.importorskip("tensorflow")
    from ai_edge_litert.interpreter import Interpreter
    from jax.experimental import jax2tf

    model = build_model("embednet", **TINY, impl="native", flip_average=True)
    rng = np.random.default_rng(0)
    images = rng.random((40, 32, 32, 1), dtype=np.float32)
    params = model.init(jax.random.key(0), images[:1])["params"]
    model, params = fold_standardization(model, params)
    fn = jax2tf.convert(lambda x: model.apply({"params": params}, x), with_gradient=False)
    spec = tf.TensorSpec((1, 32, 32, 1), tf.float32)
    tf_fn = tf.function(fn, autograph=False, input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf_fn.get_concrete_function()], tf_fn
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([images[i : i + 1]] for i in range(len(images)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    blob = converter.convert()
    ops = _op_names(blob)
    assert "REVERSE_V2" in ops and not [op for op in ops if op.upper().startswith(FORBIDDEN)]
    interpreter = Interpreter(model_content=blob)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    got = []
    for x in images[:10]:
        interpreter.set_tensor(inp["index"], x[None])
        interpreter.invoke()
        got.append(interpreter.get_tensor(out["index"])[0])
    want = np.asarray(model.apply({"params": params}, images[:10]))
    cosine = np.sum(np.stack(got) * want, axis=-1) / np.linalg.norm(np.stack(got), axis=-1)
    # int8 activations and weights: a 16-d unit embedding stays within a few degrees.
    assert cosine.min() > 0.98, cosine
