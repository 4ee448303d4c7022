"""Baseline (b): the official TensorFlow Lite on-device training recipe, as a user builds it today.

What the TensorFlow guide "On-device training with TensorFlow Lite" (and its transfer-learning
sample app) has a developer write, applied to the same backbone pocketfit exports:

  * a ``tf.Module`` holding a **float32** backbone (the JAX backbone through ``jax2tf``, frozen)
    and a Keras ``Dense`` head;
  * ``@tf.function`` signatures ``load`` (images -> bottleneck features, the sample's cached
    features), ``train`` (bottlenecks, one-hot labels -> loss: ``tf.GradientTape``, Keras
    categorical cross-entropy, a Keras ``SGD`` optimizer with weight decay), ``infer``
    (images -> class probabilities and logits), ``save`` and ``restore`` (``tf.raw_ops.Save`` /
    ``Restore`` of the head to a checkpoint file);
  * converted with ``TFLITE_BUILTINS`` plus ``SELECT_TF_OPS`` and resource variables, as the
    guide does.

Checked on this machine (TF 2.21, ai-edge-litert 2.3): ``load``, ``train`` and ``infer`` convert to
builtins and run in the ``ai_edge_litert`` interpreter; ``save`` and ``restore`` become Flex ops
(``FlexSave``, ``FlexRestore``) that neither ``ai_edge_litert`` nor ``tf.lite.Interpreter`` of the
pip packages can run (no Flex delegate ships with them), so :meth:`OfficialModel.save` raises
:class:`FlexUnavailable`. A phone app would have to bundle the Select-TF-ops runtime for them.

One subtlety the guide predates: with Keras 3 the optimizer's own variables (``iterations``,
``learning_rate``) are not tracked by the ``tf.Module``, so the converter drops their initial
values and ``train`` fails at ``READ_VARIABLE``; they are attached to the module explicitly.

Reference:
  TensorFlow, "On-device training with TensorFlow Lite",
  https://www.tensorflow.org/lite/examples/on_device_training/overview
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from devices import median_parts

SIGNATURES = ("load", "train", "infer", "save", "restore")


class FlexUnavailable(RuntimeError):
    """A signature needs Select TF ops (Flex) that the interpreter in use does not ship."""


class EmbeddingBackbone(Protocol):
    """What the recipe needs of a backbone (``export.artifact.split.Backbone`` is one)."""

    @property
    def input_shape(self) -> tuple[int, int, int]: ...

    @property
    def embedding_dim(self) -> int: ...

    def embed(self) -> Callable[[Any], Any]: ...


def build_official(
    backbone: EmbeddingBackbone,
    classes: int,
    *,
    learning_rate: float = 0.5,
    weight_decay: float = 5e-4,
    seed: int = 0,
) -> bytes:
    """Builds the guide's trainable model over ``backbone`` and converts it to a flatbuffer.

    Args:
      backbone: the trained backbone; its ``embed()`` JAX function becomes the float32 ``load``.
      classes: output classes of the Dense head (the people the app will enroll).
      learning_rate: SGD learning rate of the Keras optimizer.
      weight_decay: the Keras SGD optimizer's (decoupled) weight decay.
      seed: initialisation of the Dense head.

    Returns:
      The ``.tflite`` bytes (builtins plus Flex ops for ``save`` / ``restore``).
    """
    _check(classes, learning_rate, weight_decay)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from jax.experimental import jax2tf

    embed = jax2tf.convert(
        backbone.embed(), with_gradient=False, polymorphic_shapes=["(b, _, _, _)"]
    )
    shape, dim = tuple(backbone.input_shape), int(backbone.embedding_dim)
    return _convert(embed, (), shape, dim, classes, learning_rate, weight_decay, seed)


def build_official_keras(
    model: Any,
    classes: int,
    *,
    learning_rate: float = 0.5,
    weight_decay: float = 5e-4,
    seed: int = 0,
) -> bytes:
    """The guide's trainable model over a Keras backbone, as its users have one.

    Args:
      model: a Keras model ``images -> embeddings`` (e.g.
        :func:`export.baselines.keras_embednet.keras_backbone`), frozen in ``load``.
      classes, learning_rate, weight_decay, seed: as :func:`build_official`.

    Returns:
      The ``.tflite`` bytes (builtins plus Flex ops for ``save`` / ``restore``).
    """
    _check(classes, learning_rate, weight_decay)
    model.trainable = False
    shape, dim = tuple(model.input_shape[1:]), int(model.output_shape[-1])
    # Keras 3 weights wrap tf.Variables the module would not track (see the module docstring).
    backbone_variables = [w.value for w in model.weights]
    embed = lambda x: model(x, training=False)  # noqa: E731
    return _convert(
        embed, backbone_variables, shape, dim, classes, learning_rate, weight_decay, seed
    )


def _check(classes: int, learning_rate: float, weight_decay: float) -> None:
    if classes < 2:
        raise ValueError(f"the head needs at least 2 classes, got {classes}.")
    if learning_rate <= 0 or weight_decay < 0:
        raise ValueError(
            f"learning_rate must be > 0 and weight_decay >= 0, got {learning_rate}, {weight_decay}."
        )


def _convert(
    embed: Callable[[Any], Any],
    backbone_variables: Any,
    shape: tuple[int, ...],
    dim: int,
    classes: int,
    learning_rate: float,
    weight_decay: float,
    seed: int,
) -> bytes:
    """The guide's ``tf.Module`` over ``embed`` (a TF-callable backbone), converted."""
    import tensorflow as tf

    f32 = tf.float32

    class TrainableModel(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            tf.keras.utils.set_random_seed(seed)
            self.head = tf.keras.layers.Dense(classes, name="dense")
            self.head.build((None, dim))
            self.optimizer = tf.keras.optimizers.SGD(
                learning_rate=learning_rate, weight_decay=weight_decay
            )
            self.optimizer.build(self.head.trainable_variables)
            # Keras 3 variables wrap tf.Variables the module does not track: attach them, or
            # the converter drops their initial values (READ_VARIABLE fails on the device).
            self.tracked = [v.value for v in (*self.head.weights, *self.optimizer.variables)]
            self.backbone_variables = list(backbone_variables)
            self.loss = tf.keras.losses.CategoricalCrossentropy(from_logits=True)

        @tf.function(
            autograph=False, input_signature=[tf.TensorSpec([None, *shape], f32, name="x")]
        )
        def load(self, x: Any) -> dict[str, Any]:
            return {"bottleneck": embed(x)}

        @tf.function(
            autograph=False,
            input_signature=[
                tf.TensorSpec([None, dim], f32, name="bottleneck"),
                tf.TensorSpec([None, classes], f32, name="label"),
            ],
        )
        def train(self, bottleneck: Any, label: Any) -> dict[str, Any]:
            with tf.GradientTape() as tape:
                loss = self.loss(label, self.head(bottleneck))
            variables = self.head.trainable_variables
            gradients = tape.gradient(loss, variables)
            self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
            return {"loss": loss}

        @tf.function(
            autograph=False, input_signature=[tf.TensorSpec([None, *shape], f32, name="x")]
        )
        def infer(self, x: Any) -> dict[str, Any]:
            logits = self.head(embed(x))
            return {"output": tf.nn.softmax(logits), "logits": logits}

        @tf.function(
            autograph=False, input_signature=[tf.TensorSpec([], tf.string, name="checkpoint_path")]
        )
        def save(self, checkpoint_path: Any) -> dict[str, Any]:
            weights = self.head.weights
            tf.raw_ops.Save(
                filename=checkpoint_path,
                tensor_names=[w.path for w in weights],
                data=[tf.convert_to_tensor(w) for w in weights],
                name="save",
            )
            return {"checkpoint_path": checkpoint_path}

        @tf.function(
            autograph=False, input_signature=[tf.TensorSpec([], tf.string, name="checkpoint_path")]
        )
        def restore(self, checkpoint_path: Any) -> dict[str, Any]:
            restored = {}
            for w in self.head.weights:
                value = tf.raw_ops.Restore(
                    file_pattern=checkpoint_path, tensor_name=w.path, dt=f32, name="restore"
                )
                value = tf.reshape(value, w.shape)
                w.assign(value)
                restored[w.path.replace("/", "__")] = value
            return restored

    module = TrainableModel()
    signatures = {name: getattr(module, name).get_concrete_function() for name in SIGNATURES}
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS,
            tf.lite.OpsSet.SELECT_TF_OPS,  # the guide's save / restore need them
        ]
        converter.experimental_enable_resource_variables = True
        return bytes(converter.convert())


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """Float one-hot rows, the label format of the guide's ``train``."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must be in 0..{classes - 1}, got {labels.min()}..{labels.max()}.")
    return np.eye(classes, dtype=np.float32)[labels]


class OfficialModel:
    """The converted recipe in the ``ai_edge_litert`` interpreter, driven as the guide's app does.

    Args:
      model: flatbuffer from :func:`build_official`.
      num_threads: interpreter threads.
    """

    def __init__(self, model: bytes, *, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.model = model
        self.interpreter = Interpreter(model_content=model, num_threads=num_threads)
        missing = set(SIGNATURES) - set(self.interpreter.get_signature_list())
        if missing:
            raise ValueError(f"not an official-recipe model: no signature(s) {sorted(missing)}.")
        self._runners: dict[str, Any] = {}
        self.classes = self._classes()

    def _runner(self, name: str) -> Any:
        if name not in self._runners:
            try:
                self._runners[name] = self.interpreter.get_signature_runner(name)
            except RuntimeError as err:
                raise FlexUnavailable(
                    f"signature {name!r} needs Select TF ops (Flex), which this LiteRT "
                    f"interpreter does not ship: {str(err).splitlines()[0]}"
                ) from None
        return self._runners[name]

    def _classes(self) -> int:
        details = self._runner("train").get_input_details()
        return int(details["label"]["shape_signature"][-1])

    def load(self, images: np.ndarray, *, batch: int = 32) -> np.ndarray:
        """Bottleneck features of ``images`` through the float32 backbone."""
        run = self._runner("load")
        x = np.asarray(images, np.float32)
        out = [run(x=x[i : i + batch])["bottleneck"] for i in range(0, len(x), batch)]
        return np.concatenate(out)

    def train(
        self, bottlenecks: np.ndarray, labels: np.ndarray, *, epochs: int, batch: int = 100
    ) -> list[float]:
        """``epochs`` passes of the ``train`` signature over the data in order; mean loss each."""
        run = self._runner("train")
        x, y = np.asarray(bottlenecks, np.float32), one_hot(labels, self.classes)
        losses = []
        for _ in range(epochs):
            step = [
                float(run(bottleneck=x[i : i + batch], label=y[i : i + batch])["loss"])
                for i in range(0, len(x), batch)
            ]
            losses.append(float(np.mean(step)))
        return losses

    def enroll(
        self,
        images: np.ndarray,
        label: int,
        gallery: np.ndarray,
        gallery_labels: np.ndarray,
        *,
        epochs: int,
        batch: int = 100,
    ) -> dict[str, float]:
        """One person's enrollment as the guide's app runs it, timed: ``load`` of their captures
        (one batch), then ``epochs`` passes of ``train`` over the gallery's bottlenecks with
        theirs appended (the guide retrains the head over everyone's cached bottlenecks).

        Args:
          images: the person's model inputs ``(k, *input shape)``.
          label: their class.
          gallery, gallery_labels: everyone else's bottlenecks and classes.

        Returns:
          Seconds: ``{"enroll": load + train, "load": ..., "train": ...}``.
        """
        t0 = time.perf_counter()
        new = self.load(images, batch=len(images))
        t1 = time.perf_counter()
        x = np.concatenate([gallery, new])
        y = np.concatenate([gallery_labels, np.full(len(new), label)])
        self.train(x, y, epochs=epochs, batch=batch)
        t2 = time.perf_counter()
        return {"enroll": t2 - t0, "load": t1 - t0, "train": t2 - t1}

    def infer(self, images: np.ndarray, *, batch: int = 32) -> np.ndarray:
        """Class probabilities ``(n, classes)`` of ``images``."""
        run = self._runner("infer")
        x = np.asarray(images, np.float32)
        return np.concatenate([run(x=x[i : i + batch])["output"] for i in range(0, len(x), batch)])

    def save(self, path: str | os.PathLike[str]) -> None:
        """The guide's ``save`` signature (``tf.raw_ops.Save``); raises :class:`FlexUnavailable`
        where the interpreter has no Flex delegate (the pip packages here)."""
        self._call_flex("save", Path(path))

    def restore(self, path: str | os.PathLike[str]) -> None:
        """The guide's ``restore`` signature; see :meth:`save`."""
        self._call_flex("restore", Path(path))

    def _call_flex(self, name: str, path: Path) -> None:
        run = self._runner(name)
        try:
            run(checkpoint_path=np.asarray(str(path)))
        except RuntimeError as err:
            raise FlexUnavailable(
                f"signature {name!r} needs Select TF ops (Flex), which this LiteRT interpreter "
                f"does not ship: {str(err).splitlines()[0]}"
            ) from None


def time_official_enrollments(
    model: OfficialModel,
    people: np.ndarray,
    *,
    epochs: int,
    batch: int = 100,
    warmup: int = 1,
    bottlenecks: np.ndarray | None = None,
) -> dict[str, float]:
    """Median seconds of one enrollment by the guide's recipe, over one of each of ``people``.

    Person ``i`` (class ``i``) enrolls from their captures against a gallery of everyone else's
    bottlenecks (:meth:`OfficialModel.enroll`), on ``model``'s interpreter, kept warm by
    ``warmup`` untimed enrollments of the first person (as an app's interpreter is loaded and
    has run).

    Args:
      model: the recipe's model; one class per person.
      people: model inputs ``(people, k, *input shape)``.
      epochs, batch: the recipe's (the guide: 100 epochs of batches of 100).
      bottlenecks: ``model.load`` of ``people``, ``(people, k, dim)``; computed when None.

    Returns:
      Median seconds of ``enroll``, ``load`` and ``train`` (:func:`devices.median_parts`).
    """
    people = np.asarray(people, np.float32)
    count, k = people.shape[:2]
    if count != model.classes:
        raise ValueError(f"the model has {model.classes} classes for {count} people.")
    if bottlenecks is None:
        bottlenecks = official_gallery(model, people)
    labels = np.repeat(np.arange(count), k)

    def enroll(i: int) -> dict[str, float]:
        others = bottlenecks[np.arange(count) != i].reshape(-1, bottlenecks.shape[-1])
        return model.enroll(people[i], i, others, labels[labels != i], epochs=epochs, batch=batch)

    for _ in range(warmup):
        enroll(0)
    return median_parts([enroll(i) for i in range(count)])


def official_gallery(model: OfficialModel, people: np.ndarray) -> np.ndarray:
    """The cached bottlenecks of ``people`` (model inputs ``(people, k, *input shape)``), as
    the guide's app keeps them: ``(people, k, dim)``."""
    people = np.asarray(people, np.float32)
    count, k = people.shape[:2]
    return model.load(people.reshape(count * k, *people.shape[2:])).reshape(count, k, -1)
