"""The two embedding-training tasks: ``"contrastive"`` (stage 1) and ``"margin_softmax"`` (stage 2).

Both train a model whose output is an L2-normalised embedding, next to parameters of their own
(a projection head, a classifier over identities) that are dropped when the model is saved, and
both score held-out data by the verification EER (:class:`~pretrain.train.tasks.EmbeddingEval`).

References:
  Chen et al., "A simple framework for contrastive learning of visual representations", ICML 2020.
  Wang et al., "CosFace", CVPR 2018; Deng et al., "ArcFace", CVPR 2019.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pretrain.embedding.augment import augment_batch, make_augment
from pretrain.embedding.losses import MARGINS, cosine_logits, margin_softmax_loss, nt_xent
from pretrain.embedding.minutiae_head import (
    block_name,
    embed_and_features,
    head_channels,
    init_head,
    minutiae_loss,
)
from pretrain.train.tasks import ApplyFn, EmbeddingEval, Params, register_task

HEAD_INITS = ("random", "imprint")
IMPRINT_BATCH = 256

# Separates the augmentation stream from the other keys derived from the run's seed.
_AUGMENT_STREAM = 0x0A06


def _step_key(seed: int, step: Any) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), _AUGMENT_STREAM), step)


def _embedding_dim(module: nn.Module, model: Params, example: jax.Array) -> int:
    return int(jax.eval_shape(lambda p: module.apply({"params": p}, example), model).shape[-1])


def imprinted_kernel(
    module: nn.Module, model: Params, images: np.ndarray, labels: np.ndarray, classes: int
) -> np.ndarray:
    """``(d, classes)`` classifier columns imprinted from ``model``'s embeddings: each identity's
    normalised sum of its training images' embeddings (float32).

    Raises:
      ValueError: an identity of ``0..classes-1`` without a training image.
    """
    apply = jax.jit(lambda p, x: module.apply({"params": p}, x))
    sums: np.ndarray | None = None
    for start in range(0, len(images), IMPRINT_BATCH):
        chunk = np.asarray(images[start : start + IMPRINT_BATCH])
        pad = IMPRINT_BATCH - len(chunk)
        if pad:  # one batch shape, one compilation
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)])
        emb = np.asarray(apply(model, chunk), np.float64)[: IMPRINT_BATCH - pad]
        if sums is None:
            sums = np.zeros((classes, emb.shape[1]), np.float64)
        np.add.at(sums, np.asarray(labels[start : start + IMPRINT_BATCH]), emb)
    assert sums is not None, "no training images"
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    if np.any(norms == 0):
        missing = int(np.sum(norms == 0))
        raise ValueError(
            f"head_init='imprint': {missing} of {sums.shape[0]} identities have no training "
            "image (labels must cover 0..num_classes-1)."
        )
    return (sums / norms).T.astype(np.float32)


@register_task("margin_softmax")
@dataclasses.dataclass(frozen=True)
class MarginSoftmax(EmbeddingEval):
    """Supervised metric learning: a cosine classifier over the training identities whose target
    logit carries an additive margin, so that identities end up separated by an angle.

    Attributes:
      kind: ``"cosface"`` (``cos(theta) - m``) or ``"arcface"`` (``cos(theta + m)``).
      scale: logit scale ``s``.
      margin: ``m``.
      margin_warmup: the margin grows linearly from 0 to ``m`` over this many steps. From a
        random start every embedding points the same way (ReLU features, no normalisation
        layers), and a full margin on top keeps them there; a plain normalised softmax first
        spreads them out.
      augment: augmentation options (:mod:`pretrain.embedding.augment`); {} for none.
      contrastive_weight: adds this times the NT-Xent loss of :class:`Contrastive` on two views
        of each batch (both views also carry the margin loss). With few training identities
        the margin loss alone discards what tells apart faces it was not trained on; instance
        discrimination keeps it. 0 (the default) trains on the margin loss alone.
      temperature, projection: the NT-Xent temperature and projection head (as
        :class:`Contrastive`'s), used when ``contrastive_weight > 0``.
      head_init: how a stage that starts from a saved model (``init_from``) sets its classifier:
        ``"random"`` (as a fresh run) or ``"imprint"`` (each identity's weight vector is the
        normalised mean embedding of its training images under the saved model, so the first
        steps refine a classifier that already agrees with the backbone instead of pulling the
        backbone towards random directions; Qi et al. 2018). A fresh run ignores it.
      minutiae_weight: adds this times the loss of a minutiae-map head on block
        ``minutiae_block`` (:mod:`pretrain.embedding.minutiae_head`); the training images
        then carry their minutiae map as a second channel (the dataset option
        ``minutiae_maps``). 0 (the default): no head.
      minutiae_block: the block whose feature map the head reads.
      minutiae_layer: the submodule whose feature map the head reads instead, by name (e.g.
        ``"ridge"``, EmbedNet's ridge branch before its gate); "" (the default): the block.
      minutiae_hidden: channels of the head's own 3x3 convolution before its 1x1 output (0:
        the output alone, a linear head).
      seed: seeds the augmentation (set from the run's seed).
    """

    kind: str = "cosface"
    scale: float = 30.0
    margin: float = 0.35
    margin_warmup: int = 0
    augment: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    contrastive_weight: float = 0.0
    temperature: float = 0.1
    projection: Sequence[int] = (256, 128)
    head_init: str = "random"
    minutiae_weight: float = 0.0
    minutiae_block: int = 4
    minutiae_hidden: int = 0
    minutiae_layer: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.minutiae_weight < 0 or self.minutiae_block < 1 or self.minutiae_hidden < 0:
            raise ValueError(
                "need minutiae_weight >= 0, minutiae_block >= 1 and minutiae_hidden >= 0, got "
                f"{self.minutiae_weight}, {self.minutiae_block}, {self.minutiae_hidden}."
            )
        if self.head_init not in HEAD_INITS:
            raise ValueError(
                f"margin_softmax head_init must be one of {HEAD_INITS}, got {self.head_init!r}."
            )
        if self.kind not in MARGINS:
            raise ValueError(f"margin_softmax kind must be one of {MARGINS}, got {self.kind!r}.")
        if not self.scale > 0 or self.margin < 0 or self.margin_warmup < 0:
            raise ValueError(
                f"need scale > 0, margin >= 0 and margin_warmup >= 0, got {self.scale}, "
                f"{self.margin}, {self.margin_warmup}."
            )
        if self.contrastive_weight < 0:
            raise ValueError(f"contrastive_weight must be >= 0, got {self.contrastive_weight}.")
        if self.contrastive_weight and not self.augment:
            raise ValueError(
                "contrastive_weight needs augment options: without them both views agree."
            )
        make_augment(self.augment)  # validate now, not at the first step

    def _minutiae_source(self) -> str:
        return self.minutiae_layer or block_name(self.minutiae_block)

    def _contrastive(self) -> Contrastive:
        return Contrastive(
            temperature=self.temperature,
            projection=tuple(self.projection),
            augment=self.augment,
            seed=self.seed,
        )

    def init(
        self, module: nn.Module, key: jax.Array, example: jax.Array, *, num_classes: int
    ) -> Params:
        if num_classes < 2:
            raise ValueError(f"margin_softmax needs at least 2 identities, got {num_classes}.")
        example = example[..., :1] if self.minutiae_weight else example
        k_model, k_head = jax.random.split(key)
        model = module.init(k_model, example)["params"]
        dim = _embedding_dim(module, model, example)
        kernel = jax.random.normal(k_head, (dim, num_classes)) / math.sqrt(dim)
        params = {"model": model, "classifier": {"kernel": kernel}}
        if self.minutiae_weight:
            channels = head_channels(module, model, example, self._minutiae_source())
            params["minutiae"] = init_head(
                jax.random.fold_in(key, 2), channels, self.minutiae_hidden
            )
        if self.contrastive_weight:
            k_proj = jax.random.fold_in(key, 1)
            params["projection"] = self._contrastive().init(module, k_proj, example)["projection"]
        return params

    def init_from_data(
        self, module: nn.Module, params: Params, images: np.ndarray, labels: np.ndarray
    ) -> Params:
        """``params`` with the classifier imprinted from the training data (``head_init``).

        Called once, after the model's parameters were loaded from ``init_from``; with
        ``head_init="random"`` it returns ``params`` unchanged.
        """
        if self.head_init != "imprint":
            return params
        if self.minutiae_weight:
            images = images[..., :1]  # the print, not its minutiae map
        kernel = params["classifier"]["kernel"]
        imprinted = imprinted_kernel(module, params["model"], images, labels, kernel.shape[1])
        return {**params, "classifier": {"kernel": jnp.asarray(imprinted, kernel.dtype)}}

    def margin_at(self, step: Any) -> Any:
        """The margin in force at ``step`` (see ``margin_warmup``)."""
        if not self.margin_warmup:
            return self.margin
        return self.margin * jnp.minimum(1.0, step / self.margin_warmup)

    def loss(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, step: Any
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        aug = make_augment(self.augment)
        key = _step_key(self.seed, step)
        n = images.shape[0]
        if self.contrastive_weight:
            k1, k2 = jax.random.split(key)
            x = jnp.concatenate([augment_batch(k1, images, aug), augment_batch(k2, images, aug)])
            targets = jnp.concatenate([labels, labels])
        else:
            x = augment_batch(key, images, aug) if self.augment else images
            targets = labels
        side = {}
        if self.minutiae_weight:
            if x.shape[-1] != 2:
                raise ValueError(
                    "minutiae_weight needs the minutiae maps as the images' second channel "
                    "(the dataset option minutiae_maps)."
                )
            x, maps = x[..., :1], x[..., 1]
            embeddings, features = embed_and_features(
                apply_fn, params["model"], x, self._minutiae_source()
            )
            side["minutiae_loss"] = minutiae_loss(params["minutiae"], features, maps)
        else:
            embeddings = apply_fn({"params": params["model"]}, x)
        cosines = cosine_logits(embeddings, params["classifier"]["kernel"])
        loss = margin_softmax_loss(
            cosines, targets, scale=self.scale, margin=self.margin_at(step), kind=self.kind
        ).mean()
        # Over the first view only, so the count stays per example of the batch.
        errors = jnp.sum(jnp.argmax(cosines[:n], -1) != labels)
        if self.contrastive_weight:
            z = self._contrastive()._project(params["projection"], embeddings)
            contrast, _ = nt_xent(
                z[:n], z[n:], temperature=self.temperature, duplicates=same_source(images)
            )
            loss = loss + self.contrastive_weight * contrast.mean()
        if side:
            loss = loss + self.minutiae_weight * side["minutiae_loss"]
        return loss, {"errors": errors, **side}


def same_source(images: jax.Array) -> jax.Array:
    """``(n, n)`` True where two rows of the batch are the same image (bit for bit)."""
    flat = images.reshape(images.shape[0], -1)
    # Two random projections of the pixels: equal for copies, distinct for different images.
    probe = jax.random.normal(jax.random.key(0), (flat.shape[1], 2), flat.dtype)
    sketch = flat @ probe
    a, b = sketch[:, None, :], sketch[None, :, :]
    # A tolerance, not ==: a matrix product need not round identical rows identically.
    return jnp.all(jnp.abs(a - b) <= 1e-5 * (jnp.abs(a) + jnp.abs(b) + 1e-3), axis=-1)


@register_task("contrastive")
@dataclasses.dataclass(frozen=True)
class Contrastive(EmbeddingEval):
    """Self-supervised instance discrimination (SimCLR): two augmented views of each image must
    find each other among the other views of the batch. Labels are never read.

    Attributes:
      temperature: NT-Xent temperature.
      projection: widths of the MLP projection head on top of the embedding (ReLU between
        layers); dropped after training, as in SimCLR. () trains on the embedding itself.
      augment: augmentation options (:mod:`pretrain.embedding.augment`); the views differ only
        by them, so they define what the embedding learns to ignore.
      seed: seeds the augmentation (set from the run's seed).
    """

    temperature: float = 0.2
    projection: Sequence[int] = (256, 128)
    augment: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}.")
        if any(int(w) < 1 for w in self.projection):
            raise ValueError(f"projection widths must be positive, got {self.projection}.")
        if not self.augment:
            raise ValueError("contrastive needs augment options: without them both views agree.")
        make_augment(self.augment)

    def init(
        self, module: nn.Module, key: jax.Array, example: jax.Array, *, num_classes: int = 0
    ) -> Params:
        k_model, *k_layers = jax.random.split(key, 1 + len(self.projection))
        model = module.init(k_model, example)["params"]
        width = _embedding_dim(module, model, example)
        head = {}
        for i, (k, out) in enumerate(zip(k_layers, self.projection, strict=True)):
            head[f"layer{i}"] = {
                "kernel": jax.random.normal(k, (width, int(out))) * math.sqrt(2.0 / width),
                "bias": jnp.zeros((int(out),)),
            }
            width = int(out)
        return {"model": model, "projection": head}

    def _project(self, head: Params, h: jax.Array) -> jax.Array:
        for i in range(len(self.projection)):
            layer = head[f"layer{i}"]
            h = h @ layer["kernel"] + layer["bias"]
            if i < len(self.projection) - 1:
                h = nn.relu(h)
        return h

    def loss(
        self, apply_fn: ApplyFn, params: Params, images: Any, labels: Any, step: Any
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        del labels  # self-supervised: identities are never seen
        aug = make_augment(self.augment)
        k1, k2 = jax.random.split(_step_key(self.seed, step))
        n = images.shape[0]
        views = jnp.concatenate([augment_batch(k1, images, aug), augment_batch(k2, images, aug)])
        z = self._project(params["projection"], apply_fn({"params": params["model"]}, views))
        loss, correct = nt_xent(
            z[:n], z[n:], temperature=self.temperature, duplicates=same_source(images)
        )
        return loss.mean(), {"errors": (2 * n - jnp.sum(correct)) / 2}
