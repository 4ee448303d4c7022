"""Faces at scale for pretraining: LFW + Extended Yale B with fixed roles for every LFW person.

Every LFW person has exactly one role, a pure function of the dataset's file names and a seed
(:func:`lfw_roles`), so training, evaluation and export agree on it in any process:

* ``dev``: people with ``dev_min_images``.. ``dev_max_images`` images, drawn at random. They
  choose every hyperparameter, checkpoint, threshold rule and device setting; training never
  reads them (they are the validation split whose EER picks the checkpoint and cuts the rate).
* ``background``: people with one image, drawn at random: the impostors whose embeddings an
  artifact ships to set the device threshold. Nothing trains or tunes on them.
* ``train``: everyone else, with every Extended Yale B person.

ORL (all 40 people) is evaluation only and is never read here.

``lfw_yale_b``: the registered dataset. Its training split holds the ``train`` people with at
least ``min_images`` images (1 for the unlabelled stage, more for the margin-softmax stage), the
validation and test splits the ``dev`` people.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import devices.preprocess
from devices.preprocess import FACE_FRAMES, PreprocessSpec
from pretrain.config import ConfigError
from pretrain.data import ArrayDataset, Later, face_sets
from pretrain.data.face_sets import LFW, YALE_B, image_counts, read_framed
from pretrain.embedding.cache import cached, code_digest
from pretrain.train.datasets import Splits, register_dataset

# The model input of the faces-at-scale models: ORL's framing at 96x80 (ORL's 112x92 shrunk by
# 1.17 in height and 1.15 in width).
INPUT_SIZE = (96, 80)
ROLES = ("train", "dev", "background")


class FaceRoles(NamedTuple):
    """LFW people by role (names sorted within each); Extended Yale B people all train."""

    train: tuple[str, ...]
    dev: tuple[str, ...]
    background: tuple[str, ...]
    seed: int

    def record(self) -> dict[str, Any]:
        """What a manifest records: the rule, the counts and the dev and background names."""
        return {
            "dataset": LFW,
            "rule": "pretrain.embedding.face_data.lfw_roles",
            "seed": self.seed,
            "counts": {role: len(getattr(self, role)) for role in ROLES},
            "dev": list(self.dev),
            "background": list(self.background),
            "evaluation": "orl_faces s1-s40 (never read by pretraining)",
        }


def lfw_roles(
    counts: Mapping[str, int],
    *,
    dev_people: int = 120,
    dev_min_images: int = 6,
    dev_max_images: int = 40,
    background_people: int = 1000,
    seed: int = 0,
) -> FaceRoles:
    """Assigns each LFW person a role (see the module docstring); a pure function of its inputs.

    Args:
      counts: images per person (:func:`pretrain.data.face_sets.image_counts`).
      dev_people: development people, drawn among those with ``dev_min_images`` ..
        ``dev_max_images`` images (>= 6 leaves a probe after a 5-image enrollment; the cap
        keeps the few people with hundreds of images in training).
      background_people: background people, drawn among those with exactly one image (no use
        to the margin-softmax stage).
      seed: the draw's seed.

    Raises:
      ConfigError: too few people qualify for a role.
    """
    names = sorted(counts)
    eligible = [n for n in names if dev_min_images <= counts[n] <= dev_max_images]
    singles = [n for n in names if counts[n] == 1]
    for role, want, have in (
        ("dev", dev_people, eligible),
        ("background", background_people, singles),
    ):
        if not 0 <= want <= len(have):
            raise ConfigError(
                f"{role}_people must be in 0..{len(have)} (LFW people that qualify), got {want}."
            )
    rng = np.random.default_rng(seed)
    dev = sorted(eligible[i] for i in rng.permutation(len(eligible))[:dev_people])
    background = sorted(singles[i] for i in rng.permutation(len(singles))[:background_people])
    taken = set(dev) | set(background)
    return FaceRoles(tuple(n for n in names if n not in taken), tuple(dev), tuple(background), seed)


def face_input_spec(input_size: Sequence[int] = INPUT_SIZE) -> PreprocessSpec:
    """The model input spec of a framed face: no crop (the frame did it), area resize."""
    size = (int(input_size[0]), int(input_size[1]))
    return PreprocessSpec(modality="face", input_size=size, crop="none")


@functools.cache
def _code_digest() -> str:
    """Digest of the framing and preprocessing code: a code change rebuilds the cache."""
    return code_digest([devices.preprocess, face_sets])


def framed_faces(
    name: str,
    people: Sequence[str] | None = None,
    *,
    input_size: Sequence[int] = INPUT_SIZE,
    root: str = "",
    cache: str = "",
) -> tuple[ArrayDataset, tuple[str, ...]]:
    """Model inputs of face dataset ``name`` (``people`` only, in that order), cached on disk.

    Returns:
      ``(dataset, identities)``: labels index ``identities``; images float32 ``(n, h, w, 1)``.
    """
    spec = face_input_spec(input_size)
    key = {
        "kind": "framed-faces",
        "dataset": name,
        "people": list(people) if people is not None else None,
        "frame": FACE_FRAMES[name].to_dict(),
        "spec": spec.to_dict(),
        "root": str(Path(root).resolve()) if root else "$POCKETFIT_DATA",
        "code": _code_digest(),
    }

    def build() -> dict[str, np.ndarray]:
        raw = read_framed(name, root or None, people=people)
        data = raw.preprocess(spec)
        return {
            "images": data.images,
            "labels": data.labels,
            "identities": np.asarray(raw.identities),
        }

    arrays = cached(key, build, directory=cache or None, prefix=f"faces-{name}")
    identities = tuple(str(v) for v in arrays["identities"])
    return ArrayDataset(arrays["images"], arrays["labels"].astype(np.int32), name), identities


def _keep_min_images(data: ArrayDataset, min_images: int) -> ArrayDataset:
    """The examples of identities with at least ``min_images`` images, relabelled 0..k-1."""
    ids, counts = np.unique(data.labels, return_counts=True)
    kept = ids[counts >= min_images]
    mask = np.isin(data.labels, kept)
    labels = np.searchsorted(kept, data.labels[mask]).astype(np.int32)
    return ArrayDataset(data.images[mask], labels, data.name)


@dataclasses.dataclass(frozen=True)
class RoleOptions:
    """The options of :func:`lfw_roles` a dataset config may set."""

    dev_people: int = 120
    background_people: int = 1000
    seed: int = 0


def roles_for(root: str = "", options: RoleOptions = RoleOptions()) -> FaceRoles:
    """The LFW roles under ``root`` (``$POCKETFIT_DATA`` when empty) with ``options``."""
    return lfw_roles(image_counts(LFW, root or None), **dataclasses.asdict(options))


def lfw_role_set(
    role: str,
    root: str = "",
    input_size: Sequence[int] = INPUT_SIZE,
    dev_people: int = 120,
    background_people: int = 1000,
    role_seed: int = 0,
    cache: str = "",
) -> ArrayDataset:
    """The model inputs of the LFW people in ``role`` (labels index that role's names).

    ``lfw_role_set("background")`` is the device threshold's impostors; ``"dev"`` the people
    every choice is made on.
    """
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}.")
    people = getattr(roles_for(root, RoleOptions(dev_people, background_people, role_seed)), role)
    data, _ = framed_faces(LFW, people, input_size=input_size, root=root, cache=cache)
    return ArrayDataset(data.images, data.labels, f"lfw-{role}[{len(people)}]")


def lfw_dev_set(
    root: str = "",
    input_size: Sequence[int] = INPUT_SIZE,
    dev_people: int = 120,
    background_people: int = 1000,
    role_seed: int = 0,
    cache: str = "",
) -> ArrayDataset:
    """The LFW development people's model inputs (:func:`lfw_role_set` ``"dev"``)."""
    return lfw_role_set("dev", root, input_size, dev_people, background_people, role_seed, cache)


def lfw_yale_splits(
    min_images: int = 1,
    input_size: Sequence[int] = INPUT_SIZE,
    yale_b: bool = True,
    dev_people: int = 120,
    background_people: int = 1000,
    role_seed: int = 0,
    root: str = "",
    cache: str = "",
) -> Splits:
    """LFW ``train`` people (and Extended Yale B) for training; the ``dev`` people held out.

    Args:
      min_images: keep training identities with at least this many images (1 = every image,
        for the unlabelled stage; the labels are then unused).
      input_size: model input ``(height, width)`` of the framed faces.
      yale_b: add the 38 Extended Yale B people (labels after LFW's).
      dev_people, background_people, role_seed: the roles (:func:`lfw_roles`).
      root: override for ``$POCKETFIT_DATA``.
      cache: cache folder ("" = ``$POCKETFIT_CACHE`` or ``runs/cache``).

    Returns:
      Splits ``(train, dev, dev)``: the dev people are the validation split (checkpoint choice,
      learning-rate cuts) and the test split; background and ORL people are not read.
    """
    if min_images < 1:
        raise ConfigError(f"min_images must be >= 1, got {min_images}.")
    roles = roles_for(root, RoleOptions(dev_people, background_people, role_seed))

    def train() -> ArrayDataset:
        counts = image_counts(LFW, root or None)
        # People below min_images are never read (the same set and order _keep_min_images keeps).
        people = [p for p in roles.train if counts[p] >= min_images]
        lfw, _ = framed_faces(LFW, people, input_size=input_size, root=root, cache=cache)
        parts = [lfw]
        if yale_b:
            yale, _ = framed_faces(YALE_B, None, input_size=input_size, root=root, cache=cache)
            offset = int(lfw.labels.max()) + 1
            parts.append(ArrayDataset(yale.images, yale.labels + offset, YALE_B))
        merged = ArrayDataset(
            np.concatenate([p.images for p in parts]),
            np.concatenate([p.labels for p in parts]),
            "lfw+yale_b" if yale_b else "lfw",
        )
        kept = _keep_min_images(merged, min_images)
        return ArrayDataset(kept.images, kept.labels, f"{merged.name}[train, >={min_images} img]")

    # Each part is drawn when first read (the dev people once, for validation and test).
    args = (root, input_size, dev_people, background_people, role_seed, cache)
    dev = Later(lambda: lfw_dev_set(*args))
    return Splits(Later(train), dev, dev)


register_dataset("lfw_yale_b", lfw_yale_splits)
