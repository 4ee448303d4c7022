"""The FVC verification protocol, per set, for any matcher: EER and FNMR at FMR <= 1% (FMR100).

Each FVC B set holds 10 fingers x 8 impressions. Genuine comparisons are every pair of
impressions of a finger (8 * 7 / 2 = 28 per finger, 280 per set; the symmetric match is not
repeated); impostor comparisons are the first impression of each finger against the first
impression of every other finger (10 * 9 / 2 = 45 per set). A matcher is anything that scores
pairs of samples (a :data:`Scorer`): the cosine of embeddings or of a baseline's feature
vectors, or a matcher that aligns the two prints first.

With 45 impostor scores an FMR of 1% cannot be resolved: as in FVC's FMR100 (the lowest FNMR
whose FMR is at most 1%), the threshold then lies above every impostor score, so the figure is the
FNMR at zero false matches (``floor(0.01 * 45) = 0`` impostors may be accepted).

References:
  Maio, Maltoni, Cappelli, Wayman, Jain, "FVC2000: fingerprint verification competition",
  IEEE TPAMI 24(3), 2002 (the protocol; EER, FMR100); "FVC2002: Second fingerprint verification
  competition", ICPR 2002.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from devices.cosine import normalize
from devices.preprocess import (
    FINGERPRINT_SPEC,
    PreprocessSpec,
    preprocess_batch,
    preprocess_batch_views,
)
from devices.verification import eer
from pretrain.data.fvc import (
    SENSOR_SETS,
    SYNTHETIC_SET,
    fvc_sets,
    impression_numbers,
    read_fvc,
)
from pretrain.evaluation.fvc_bootstrap import SetScores, mean_eer_interval

FMR_TARGET = 0.01
ALL_SETS = (*SENSOR_SETS[:3], SYNTHETIC_SET, *SENSOR_SETS[3:])

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``scorer(i, j)``: similarity (higher = more alike) of samples ``i[k]`` and ``j[k]`` for each k;
``i`` holds the earlier impression (the template), ``j`` the later one (the probe)."""

Prepare = Callable[[Sequence[np.ndarray]], np.ndarray]
"""Raw uint8 prints of one set -> the samples a matcher reads (default: the fingerprint spec)."""

MakeScorer = Callable[[np.ndarray], Scorer]
"""Prepared samples of one set -> the scorer of that set's pairs."""


class FvcProtocolError(ValueError):
    """A set or a score list does not fit the FVC protocol; the message says which and why."""


class FvcPairs(NamedTuple):
    """Sample index pairs of the protocol, ``(template, probe)`` per row.

    Attributes:
      genuine: ``(g, 2)`` every impression pair of each finger, lower impression first.
      impostor: ``(m, 2)`` first impressions of every two fingers.
    """

    genuine: np.ndarray
    impostor: np.ndarray


def fvc_pairs(fingers: np.ndarray, impressions: np.ndarray) -> FvcPairs:
    """The genuine and impostor index pairs of one set.

    Args:
      fingers: ``(n,)`` finger (identity) of each sample.
      impressions: ``(n,)`` impression number of each sample within its finger (1-8 in FVC).

    Returns:
      :class:`FvcPairs`; for the B sets 280 genuine and 45 impostor pairs. Fingers are taken in
      sorted order, impressions in ascending order.

    Raises:
      FvcProtocolError: shapes differ, a finger repeats an impression number, fewer than two
        fingers, or a finger with a single impression.
    """
    fingers, impressions = np.asarray(fingers), np.asarray(impressions)
    if fingers.ndim != 1 or fingers.shape != impressions.shape:
        raise FvcProtocolError(
            f"need (n,) fingers and (n,) impressions, got {fingers.shape} and {impressions.shape}."
        )
    genuine, firsts = [], []
    for finger in np.unique(fingers):
        idx = np.flatnonzero(fingers == finger)
        idx = idx[np.argsort(impressions[idx], kind="stable")]
        if np.unique(impressions[idx]).size != idx.size:
            raise FvcProtocolError(f"finger {finger!r} repeats an impression number.")
        if idx.size < 2:
            raise FvcProtocolError(f"finger {finger!r} has {idx.size} impression: no genuine pair.")
        a, b = np.triu_indices(idx.size, k=1)
        genuine.append(np.stack([idx[a], idx[b]], axis=1))
        firsts.append(idx[0])
    if len(firsts) < 2:
        raise FvcProtocolError(f"need at least 2 fingers for impostor pairs, got {len(firsts)}.")
    a, b = np.triu_indices(len(firsts), k=1)
    first = np.asarray(firsts)
    return FvcPairs(np.concatenate(genuine), np.stack([first[a], first[b]], axis=1))


def fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float = FMR_TARGET) -> float:
    """The lowest FNMR (0..1) whose FMR is at most ``fmr``, on any number of impostor scores.

    ``floor(fmr * m)`` of the ``m`` impostor scores may be accepted; the threshold lies just above
    the next higher one (a comparison is accepted when ``score >= threshold``), and the FNMR is
    the share of genuine scores below it. Fewer than ``1 / fmr`` impostors means zero accepted.
    """
    gen = _finite(genuine, "genuine")
    imp = np.sort(_finite(impostor, "impostor"))
    if not 0.0 < fmr < 1.0:
        raise FvcProtocolError(f"fmr must be in (0, 1), got {fmr}.")
    allowed = int(np.floor(fmr * imp.size + 1e-9))
    threshold = np.nextafter(imp[imp.size - allowed - 1], np.inf)
    return float(np.mean(gen < threshold))


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise FvcProtocolError(f"no {what} scores.")
    if not np.all(np.isfinite(array)):
        raise FvcProtocolError(f"{what} scores contain NaN or infinity: check the matcher.")
    return array


def scores_report(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, Any]:
    """``eer_pct``, ``fnmr_at_fmr1_pct`` and the pair counts of one set's scores."""
    gen, imp = _finite(genuine, "genuine"), _finite(impostor, "impostor")
    return {
        "eer_pct": 100.0 * eer(gen, imp),
        "fnmr_at_fmr1_pct": 100.0 * fnmr_at_fmr(gen, imp),
        "genuine_pairs": int(gen.size),
        "impostor_pairs": int(imp.size),
    }


def cosine_scorer(features: np.ndarray) -> Scorer:
    """A :data:`Scorer` giving the cosine similarity of two rows of ``features`` ``(n, d)``."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise FvcProtocolError(f"features must be (n, d), got shape {x.shape}.")
    x = normalize(x)
    return lambda i, j: np.einsum("kd,kd->k", x[i], x[j])


def features_scorer(features_of: Callable[[np.ndarray], np.ndarray]) -> MakeScorer:
    """``features_of(samples) -> (n, d)`` (an embedding, a baseline) as a cosine matcher."""
    return lambda samples: cosine_scorer(features_of(samples))


def max_cosine_scorer(features: np.ndarray, *, every_view: bool = False) -> Scorer:
    """A :data:`Scorer` over views ``(n, v, d)``: the best cosine between any view of the
    template ``i`` and view 0 of the probe ``j`` (matching under the views' shifts or turns);
    ``every_view``: between any view of each (a print's registration hypotheses,
    :func:`devices.preprocess.preprocess_views`)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 3:
        raise FvcProtocolError(f"view features must be (n, views, d), got shape {x.shape}.")
    x = normalize(x)
    if every_view:
        return lambda i, j: np.einsum("kvd,kwd->kvw", x[i], x[j]).max(axis=(1, 2))
    return lambda i, j: np.einsum("kvd,kd->kv", x[i], x[j, 0]).max(axis=1)


def views_scorer(
    features_of: Callable[[np.ndarray], np.ndarray], *, every_view: bool = False
) -> MakeScorer:
    """Like :func:`features_scorer` for samples ``(n, v, ...)`` with a view axis, scored by
    :func:`max_cosine_scorer`."""

    def make(samples: np.ndarray) -> Scorer:
        n, v = samples.shape[:2]
        flat = features_of(samples.reshape(n * v, *samples.shape[2:]))
        return max_cosine_scorer(flat.reshape(n, v, -1), every_view=every_view)

    return make


def set_scores(scorer: Scorer, fingers: np.ndarray, impressions: np.ndarray) -> SetScores:
    """The protocol's scores on one set (:func:`fvc_pairs`, scored), with their fingers."""
    pairs = fvc_pairs(fingers, impressions)
    fingers = np.asarray(fingers)
    return SetScores(
        genuine=_finite(scorer(pairs.genuine[:, 0], pairs.genuine[:, 1]), "genuine"),
        genuine_fingers=fingers[pairs.genuine[:, 0]],
        impostor=_finite(scorer(pairs.impostor[:, 0], pairs.impostor[:, 1]), "impostor"),
        impostor_fingers=fingers[pairs.impostor],
    )


def set_report(scorer: Scorer, fingers: np.ndarray, impressions: np.ndarray) -> dict[str, Any]:
    """The protocol on one set: :func:`set_scores`, then :func:`scores_report`."""
    scores = set_scores(scorer, fingers, impressions)
    return scores_report(scores.genuine, scores.impostor)


def default_prepare(images: Sequence[np.ndarray]) -> np.ndarray:
    """The model input of every print: ``FINGERPRINT_SPEC`` (``(n, 128, 128, 1)`` float32)."""
    return preprocess_batch(images, FINGERPRINT_SPEC)


def mean_eer(sets: dict[str, dict[str, Any]], names: Sequence[str] = SENSOR_SETS) -> float | None:
    """Mean ``eer_pct`` over the sets of ``names`` that were evaluated (None if none)."""
    values = [sets[n]["eer_pct"] for n in names if n in sets]
    return float(np.mean(values)) if values else None


def evaluate_fvc(
    make_scorer: MakeScorer,
    *,
    sets: Sequence[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    prepare: Prepare = default_prepare,
    progress: bool = True,
    keep_scores: bool = False,
) -> dict[str, Any]:
    """The FVC protocol on each set under ``$POCKETFIT_DATA/fvc`` for one matcher.

    Args:
      make_scorer: prepared samples of one set -> its :data:`Scorer` (e.g.
        ``features_scorer(lbp_features)``).
      sets: set names (default: every set present, in :data:`ALL_SETS` order).
      root: override for ``$POCKETFIT_DATA``.
      prepare: raw uint8 prints -> samples (default :func:`default_prepare`).
      progress: show a progress bar over the sets.
      keep_scores: also return every set's :class:`SetScores` under ``"scores"`` (for
        :func:`pretrain.evaluation.fvc_bootstrap.mean_eer_interval`; not JSON).

    Returns:
      ``{"sets": {name: scores_report}, "mean_eer_pct": mean over the sensor sets present,
      "mean_fnmr_at_fmr1_pct": likewise}``; ``2000_DB4_B`` (SFinGe output) is reported but not in
      the means.
    """
    if sets is None:
        present = set(fvc_sets(root))
        sets = [n for n in ALL_SETS if n in present] + sorted(present - set(ALL_SETS))
    out: dict[str, dict[str, Any]] = {}
    kept: dict[str, SetScores] = {}
    for name in tqdm(list(sets), desc="FVC protocol", unit="set", disable=not progress):
        raw = read_fvc(name, root)
        scorer = make_scorer(prepare(raw.images))
        kept[name] = set_scores(scorer, raw.labels, impression_numbers(raw.paths))
        out[name] = scores_report(kept[name].genuine, kept[name].impostor)
    sensors = [n for n in SENSOR_SETS if n in out]
    fnmr = [out[n]["fnmr_at_fmr1_pct"] for n in sensors]
    report: dict[str, Any] = {
        "sets": out,
        "mean_eer_pct": mean_eer(out),
        "mean_fnmr_at_fmr1_pct": float(np.mean(fnmr)) if fnmr else None,
        "mean_over": sensors,
    }
    if keep_scores:
        report["scores"] = kept
    return report


def protocol_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The result-file keys of one matcher's :func:`evaluate_fvc` report: ``fvc_protocol``
    ``{set: {"eer_pct", "fnmr_at_fmr1_pct"}}``, ``fvc_protocol_mean_eer_pct`` and
    ``fvc_protocol_mean_fnmr_at_fmr1_pct`` (means over the sensor sets); a report with its scores
    kept adds ``fvc_protocol_mean_eer_ci95_pct``, the mean EER's 95% bootstrap interval over
    fingers (:func:`pretrain.evaluation.fvc_bootstrap.mean_eer_interval`)."""
    figures = {
        "fvc_protocol": {
            name: {k: r[k] for k in ("eer_pct", "fnmr_at_fmr1_pct")}
            for name, r in report["sets"].items()
        },
        "fvc_protocol_mean_eer_pct": report["mean_eer_pct"],
        "fvc_protocol_mean_fnmr_at_fmr1_pct": report["mean_fnmr_at_fmr1_pct"],
    }
    if report.get("scores") and report["mean_over"]:
        interval = mean_eer_interval({"m": report["scores"]}, level=0.95)
        figures["fvc_protocol_mean_eer_ci95_pct"] = interval["mean_eer_pct"]["m"]["ci_pct"]
    return figures


def spec_prepare(spec: PreprocessSpec) -> Prepare:
    """A :data:`Prepare` that preprocesses every print with ``spec`` (as the device does):
    ``(n, *spec.shape)``, or ``(n, views, *spec.shape)`` for a spec with a second registration
    hypothesis (:func:`devices.preprocess.preprocess_batch_views`)."""
    if spec.max_views > 1:
        return lambda images: preprocess_batch_views(images, spec)
    return lambda images: preprocess_batch(images, spec)


def spec_scorer(
    features_of: Callable[[np.ndarray], np.ndarray], spec: PreprocessSpec
) -> MakeScorer:
    """The cosine matcher of :func:`spec_prepare`'s samples: of the embeddings, or the best
    over both prints' views (:func:`views_scorer`, ``every_view``)."""
    if spec.max_views > 1:
        return views_scorer(features_of, every_view=True)
    return features_scorer(features_of)


def matchers_protocol(
    features_of: Callable[[np.ndarray], np.ndarray],
    *,
    spec: PreprocessSpec = FINGERPRINT_SPEC,
    baselines: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    baseline_spec: PreprocessSpec = FINGERPRINT_SPEC,
    sets: Sequence[str] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The FVC protocol of an embedding and of each baseline, in the result-file keys.

    Args:
      features_of: model inputs ``(n, *spec.shape)`` -> embeddings ``(n, d)`` (cosine matched).
      spec: the model's preprocessing.
      baselines: name -> features of preprocessed prints (e.g. ``BASELINES``); None for none.
      baseline_spec: the baselines' preprocessing (default: the foreground window, their best
        input on the dev prints in ``notebooks/results/fingerprint_ablation.md``).
      sets, root: as :func:`evaluate_fvc`.

    Returns:
      :func:`protocol_figures` of the model, with ``"baselines": {name: protocol_figures}``
      (each with its mean EER's bootstrap interval).
    """
    out = protocol_figures(
        evaluate_fvc(
            spec_scorer(features_of, spec),
            sets=sets,
            root=root,
            prepare=spec_prepare(spec),
            progress=False,
            keep_scores=True,
        )
    )
    out["baselines"] = {
        name: protocol_figures(
            evaluate_fvc(
                features_scorer(fn),
                sets=sets,
                root=root,
                prepare=spec_prepare(baseline_spec),
                progress=False,
                keep_scores=True,
            )
        )
        for name, fn in (baselines or {}).items()
    }
    return out
