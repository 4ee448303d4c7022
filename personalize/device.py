"""The device: enroll users from a few samples, verify and identify them (numpy + LiteRT only).

Enrollment, in the order an app ships it:
  1. check that the artifact's files are still those the Device verified when it was created
     (their stat, :func:`personalize.artifact.unchanged`); verify it again in full (signature,
     then every file's hash) if any changed, and refuse it if that fails or it is another one;
  2. quality gate (:mod:`personalize.quality`): refuse a bad sample, naming it and the reason;
  3. plan memory: the widest exported scope whose predicted peak fits the budget
     (:mod:`personalize.memory`); none fits -> refused with the numbers;
  4. embed the samples with the artifact's int8 ``embed``;
  5. imprint the head (user + background prototypes, :mod:`personalize.head`);
  6. few-shot SGD with weight decay through the scope's train signature, with early stopping,
     keeping the weights that score best on held-out background negatives;
  7. per-user threshold for the target FAR from background impostor scores, with a tail fit
     (:mod:`personalize.threshold`);
  8. persist the user's weights, threshold and templates (their enrollment embeddings),
     encrypted (:mod:`personalize.store`).

The background embeddings are split in two halves: the first gives the prototypes, the training
negatives and (its last ``SgdConfig.holdout`` rows) the held-out negatives that choose the kept
weights, the second only the threshold, so the threshold is not set on impostors the head was
trained to push away. Imprinting only trains on none of them, so its threshold reads every row:
a tail fitted on more impostor scores is less noisy (on the LFW development people, imprinted
5-shot templates against the face artifact's background, target FAR 1e-4: measured 1.05e-5 from
500 rows, 2.1e-6 from 1,000; ``notebooks/bench/bench_enroll_far.py``).

The Device keeps the verified artifact (its model bytes and background embeddings) for its life,
so step 1 costs a few ``stat`` calls, not a hash of every file; ``verify``, ``identify`` and
``scores`` run the same check before they decide. The background people's front features, which
only the wider scopes read, are not kept: an enrollment of such a scope reads them (verified
again) and decodes them when it starts training, and drops them when it ends
(:meth:`personalize.Artifact.features`), so imprinting and the head scope never hold them.

The score of an image for a user follows the Device's :class:`~personalize.head.MatchConfig`:
the cosine between its embedding (through the user's last block when a wider scope trained it)
and the user's head column (``infer`` output 0 / scale), the best cosine of its embedding to the
user's templates, or a mix. The threshold is set on the same score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np

from devices.contract import (
    BACKGROUND_FEATURES,
    EMBED,
    EMBEDDINGS,
    FEATURES,
    GET_WEIGHTS,
    IMAGES,
    INFER,
    NO_TRAINING,
    REFINE,
    SCORES,
    SET_WEIGHTS,
    UNUSED,
    ArtifactError,
    tensor_name,
    train_input,
    trains_last_block,
)
from devices.contract import HEAD_TENSOR as HEAD
from devices.cosine import normalize
from devices.graph import Graph
from devices.localiser import check_pin
from devices.measure import trim_heap
from devices.preprocess import (
    SENSOR_DPI,
    PreprocessError,
    PreprocessSpec,
    check_dpi,
    preprocess_batch,
    preprocess_views,
    sensor_shape,
    to_sensor_dpi,
    working_bytes,
)
from devices.print_minutiae import PrintSet
from devices.print_minutiae import working_bytes as print_working_bytes
from devices.profiles import Profile, ProfileError, load_profile
from devices.tflite_file import read_model_stats
from devices.views import TestViews, average_views, make_views, views_of_input
from personalize.artifact import Artifact, load_artifact, load_runtime, unchanged
from personalize.continual import Continual, ContinualConfig, forget, forget_all
from personalize.errors import (
    EnrollmentError,
    PersonalizeError,
    SensorDpiError,
    StoreError,
    UnknownUserError,
)
from personalize.fusion import PrintFusion
from personalize.head import (
    MatchConfig,
    SgdConfig,
    TrainResult,
    Validation,
    default_match,
    holdout_margin,
    imprint_kernel,
    match_scores,
    prototypes,
    run_sgd,
    templates_of,
    user_cosines,
)
from personalize.keystore import KeyStore
from personalize.memory import PeakMeter, ScopePlan, plan_enrollment
from personalize.offload import Offload, OffloadOutcome, Remote, offload_enrollment
from personalize.quality import as_samples, check_image, check_samples
from personalize.store import RecordStore, UserRecord, check_name
from personalize.threshold import TailFit, fused_threshold_at_far, threshold_at_far
from personalize.windows import best_window, window_of, with_windows

DEFAULT_FAR = 1 / 50_000
CHUNK = 64  # rows per infer / refine call during calibration


MEMORY_NOTE = (
    "measured: resident bytes the Device's interpreter holds (measured at creation) + "
    "rise of the process's peak RSS (VmHWM) over its RSS at the start of enrollment "
    "(after a heap trim, runtime code prefaulted); predicted: planner peak of the "
    "signatures enrollment runs + host arrays"
)


class _Request(NamedTuple):
    """An enrollment's arguments, checked."""

    user: str
    train: bool
    scope: str | None  # forced scope, or None: the widest that fits
    target_far: float
    sgd: SgdConfig
    replaced: bool  # the user has a record, which the enrollment replaces


class Fitted(NamedTuple):
    """What training the head on embedded samples and calibrating its threshold produced (the
    device's own enrollment and the offload service run this one implementation)."""

    weights: dict[str, np.ndarray]  # the tensors the scope changed
    result: TrainResult | None  # None when imprinting only
    fit: TailFit
    train_ms: float
    calibrate_ms: float


class Identification(NamedTuple):
    """Who a capture shows (:meth:`Device.identification`).

    Attributes:
      user: the enrolled user it shows, or None.
      score: that user's score, else the best score (``-inf`` when no record was scored).
      skipped: the error of each record that could not be scored (unreadable, or enrolled
        with another artifact or sensor resolution): one line, which and why.
    """

    user: str | None
    score: float
    skipped: list[PersonalizeError]


class Decision(NamedTuple):
    """A verification decision: accept iff ``score >= threshold``."""

    accept: bool
    score: float
    threshold: float


@dataclasses.dataclass(frozen=True)
class EnrollmentReport:
    """What one enrollment did, measured.

    Times are wall-clock milliseconds on this process (``embed_ms``: the ``embed`` call on the
    samples; ``train_ms``: imprinting, and when the scope trains, loading the head into the
    interpreter, the SGD loop and reading the weights back (a wider scope first reads and
    decodes the background features); ``calibrate_ms``: scoring the
    background (in numpy with the head's column, through the interpreter for a trained last
    block) and the tail fit; ``total_ms``: everything, from the artifact
    check to the record on disk). Memory: see :mod:`personalize.memory`.
    """

    user: str
    samples: int
    scope: str
    predicted_peak_bytes: int
    measured_peak_bytes: int | None
    budget_bytes: int
    embed_ms: float
    train_ms: float
    steps: int
    final_loss: float | None
    threshold: float
    target_far: float
    initial_loss: float | None = None
    stopped_early: bool = False
    stop_reason: str = ""
    calibrate_ms: float = 0.0
    total_ms: float = 0.0
    threshold_method: str = ""
    impostors: int = 0
    plans: dict[str, int] = dataclasses.field(default_factory=dict)
    memory_note: str = ""
    where: str = "device"  # "device" or "cloud": who trained the weights installed
    offload: dict[str, Any] = dataclasses.field(default_factory=dict)  # the policy, the reason
    replaced: bool = False  # the user had a record, which this enrollment replaced

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _budget_bytes(budget: Any, profile: Profile) -> int:
    """``budget`` in bytes (None: the profile's memory); refused unless a positive integer."""
    if budget is None:
        return profile.memory_bytes
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget <= 0:
        raise EnrollmentError(f"budget must be a positive number of bytes, got {budget!r}.")
    return int(budget)


def _load_profile(profile: str | os.PathLike[str] | Profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return load_profile(profile)
    except ProfileError as err:
        raise EnrollmentError(str(err)) from None


def _cosine_head(manifest: dict[str, Any], where: Path) -> tuple[float, int]:
    """The head's scale and class slots; refused unless it is a cosine head (the device scores
    a record by its column's cosine, :func:`personalize.head.user_cosines`)."""
    head = manifest["head"]
    if head.get("kind") != "cosine":
        raise ArtifactError(
            f"{where}: a head of kind {head.get('kind')!r}; this device scores cosine heads "
            "(export writes kind 'cosine')."
        )
    return float(head["scale"]), int(head["classes"])


def artifact_id(manifest: dict[str, Any]) -> str:
    """The artifact's identity, which user records name: the hash of the manifest's file list,
    or the ``artifact_id`` a key rotation (``export.artifact.rekey``) kept in the manifest it
    signed (the rotation re-signs ``backbone.pfb``, so the list changes; the model does not)."""
    kept = manifest.get("artifact_id")
    if isinstance(kept, str):  # its form is checked by personalize.artifact.parse_manifest
        return kept
    files = json.dumps(manifest["files"], sort_keys=True).encode()
    return hashlib.sha256(files).hexdigest()[:16]


class Device:
    """A phone holding one verified artifact and an encrypted store of enrolled users.

    Args:
      artifact_dir: the artifact directory (``export build`` output).
      store_dir: where user records live (created if missing).
      profile: the device profile (name, path or :class:`devices.Profile`) for memory planning.
      budget: memory (bytes) enrollment may use; default the profile's ``memory_bytes``.
      trusted_key: the publisher's Ed25519 public key (PEM path, PEM bytes or key object); the
        app ships it, a key inside the artifact is never trusted. Required.
      keystore: supplies the store key and its rollback counters; default a 0600 key file in
        the per-user key folder (``keys``), never in the store.
      keys: the default keystore's folder (default :func:`personalize.keystore.key_dir`).
      num_threads: LiteRT interpreter threads.
      match: how captures are scored against users and whether records keep templates
        (:class:`~personalize.head.MatchConfig`; default :func:`personalize.head.default_match`
        of the artifact's modality, chosen on development people).
      continual: keep learning each user from accepted captures after enrollment
        (:mod:`personalize.continual`); None (default) never changes a record after enrollment.
      sensor_dpi: the resolution of the phone's fingerprint sensor, for a fingerprint artifact;
        every capture (enroll, verify, identify, embed, scores) is resampled from it to the
        500 dpi the artifact takes (:func:`devices.preprocess.to_sensor_dpi`), and the memory
        plan counts the resampling. None (default): captures are 500 dpi.
      read_only: open an existing store without writing it (verify without adapting,
        identify; a store on read-only media): no store, key or keycheck is created, and
        enroll and remove are refused (:class:`~personalize.store.RecordStore`).

    Raises:
      ArtifactError: the artifact is missing, modified, signed by another key, or older than
        one this store already admitted (rollback).
      StoreError: the key does not open the store, its file is unsafe, or the store is of
        format 1 (the message says how to migrate it).
      EnrollmentError: a bad profile, budget, thread count or sensor resolution (or one given
        for an artifact that is not of prints).

    Example:
      >>> dev = Device("art", "store", trusted_key="signing.pub")
      >>> report = dev.enroll("alice", images)   # (n, h, w) uint8 or floats in [0, 1]
      >>> dev.verify("alice", probe).accept
    """

    def __init__(
        self,
        artifact_dir: str | os.PathLike[str],
        store_dir: str | os.PathLike[str],
        profile: str | os.PathLike[str] | Profile = "host",
        budget: int | None = None,
        trusted_key: Any = None,
        keystore: KeyStore | None = None,
        num_threads: int = 1,
        keys: str | os.PathLike[str] | None = None,
        match: MatchConfig | None = None,
        continual: ContinualConfig | None = None,
        sensor_dpi: float | None = None,
        read_only: bool = False,
    ) -> None:
        if read_only and continual is not None:
            raise EnrollmentError("continual learning writes the store; a read-only Device cannot.")
        if trusted_key is None:
            raise ArtifactError(
                "trusted_key is required: the publisher's Ed25519 public key the app ships with "
                "(a key inside the artifact is never trusted)."
            )
        if not isinstance(num_threads, int) or num_threads < 1:
            raise EnrollmentError(f"num_threads must be a positive int, got {num_threads!r}.")
        self.profile = _load_profile(profile)
        self.budget = _budget_bytes(budget, self.profile)
        self.artifact_dir, self.trusted_key, self.num_threads = (
            Path(artifact_dir),
            trusted_key,
            num_threads,
        )
        artifact = load_artifact(self.artifact_dir, trusted_key)
        self.manifest = artifact.manifest
        self.artifact_id = artifact_id(artifact.manifest)
        self.spec = PreprocessSpec.from_dict(artifact.manifest["input"]["preprocess"])
        check_pin(artifact.manifest["input"])  # other localiser weights: refused
        self.sensor_dpi = self._sensor_dpi(sensor_dpi)
        self.match = match or default_match(self.spec.modality)
        self.graph = Graph.from_dict(artifact.manifest["graph"])
        self.scale, self.classes = _cosine_head(artifact.manifest, self.artifact_dir)
        self.scopes: tuple[str, ...] = tuple(artifact.manifest["scopes"])
        self.has_features = artifact.features_file is not None  # decoded only when used
        # Test-time views (export's ``views``; ``flip_average`` in older artifacts): every
        # capture is embedded as its views (devices.views) and the embeddings (imprinting,
        # templates, the head scope) are their averages; the front features the wider scopes
        # train on are the capture's own view, as the background features are (export's
        # ``build_artifact``).
        self.views = views_of_input(artifact.manifest["input"])
        # ... but the enrollment samples only as the capture and its mirror (the views' own
        # rule, devices.views.TestViews.for_enrollment: enrollment stays fast)
        self.enroll_views = self.views.for_enrollment()
        self.model_bytes = len(artifact.model)
        self.model_stats = read_model_stats(artifact.model)  # the planner charges its nodes
        self.background_count = len(artifact.background)
        half = self.background_count // 2
        if self.classes < 2 or half < max(self.classes - 1, 40):
            raise ArtifactError(
                f"the artifact has {self.classes} head slot(s) and {self.background_count} "
                "background embeddings; need >= 2 slots and >= 80 embeddings."
            )
        # The background prototypes depend on the artifact only: computed once, reused.
        self._centres, self._proto = prototypes(artifact.background[:half], self.classes - 1)
        # ... and so are its background embeddings as unit rows (every calibration scores them)
        self._background_unit = normalize(artifact.background).astype(np.float32)
        # The fingerprint fusion the artifact ships (None: it ships none); new enrollments fuse
        # when the match config asks for it, and every record is scored as it was enrolled.
        self._fusion = PrintFusion.of(artifact)
        if self.match.minutiae and self._fusion is None:
            raise ArtifactError(
                "the match config asks for the minutiae fusion (minutiae=True), but this "
                "artifact ships no background prints: export it with `python -m export build "
                "--minutiae`, or leave minutiae off."
            )
        self._hold_interpreter(artifact)
        self.store = RecordStore(store_dir, keystore, keys=keys, read_only=read_only)
        self.store.admit_artifact(artifact.manifest)  # an older signed artifact is refused
        # Plans depend on the artifact, profile and budget (fixed here) and on the sample count
        # and SGD settings: computed once per combination (the planner walks every signature).
        self._plan_memo: dict[tuple[int, SgdConfig, int, int, bool], dict[str, ScopePlan]] = {}
        self.continual = Continual(self, continual) if continual is not None else None

    @property
    def fuses(self) -> bool:
        """Whether new enrollments fuse the minutiae score: the match config asks for it (the
        artifact then ships the fusion: a Device that cannot fuse as asked is refused)."""
        return self.match.minutiae

    @property
    def fusion_weight(self) -> float | None:
        """The minutiae score's weight in fused scores, or None: the artifact ships no fusion."""
        return None if self._fusion is None else self._fusion.weight

    def _hold_interpreter(self, artifact: Artifact) -> None:
        """One interpreter for the Device's life: enrollment and matching share it (each call
        sets the weights it needs), so enrollment runs warm kernels, as an app's would."""
        # What the interpreter keeps resident (see personalize.memory): its own rise, measured
        # with the runtime library already mapped, plus the verified model bytes it runs from.
        load_runtime()
        held = PeakMeter()
        held.start()
        self._interp = artifact.interpreter(self.num_threads)
        self._pristine = self._get_weights(self._interp)
        rise = held.held()
        # ... and the verified artifact it keeps: the model bytes and the background embeddings
        kept = len(artifact.model) + artifact.background.nbytes + self._background_unit.nbytes
        kept += 0 if self._fusion is None else self._fusion.held_bytes
        self._held_bytes = None if rise is None else rise + kept
        self._artifact: Artifact | None = artifact

    def _sensor_dpi(self, dpi: Any) -> float:
        """The captures' resolution: ``dpi`` checked (prints only), or 500 when None."""
        if dpi is None:
            return float(SENSOR_DPI)
        if self.spec.modality != "fingerprint":
            raise EnrollmentError(
                f"a sensor resolution ({dpi!r} dpi) is a fingerprint sensor's; this artifact is "
                f"{self.spec.modality}, whose captures are taken as they are."
            )
        try:
            return check_dpi(dpi)
        except PreprocessError as err:
            raise EnrollmentError(str(err)) from None

    def _at_sensor(self, captures: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        """Raw captures at the artifact's resolution (resampled when the sensor's differs)."""
        if self.sensor_dpi == SENSOR_DPI:
            return captures
        return [to_sensor_dpi(x, self.sensor_dpi) for x in captures]

    # -- users ------------------------------------------------------------------------------
    def users(self) -> list[str]:
        """Enrolled user names, sorted."""
        return self.store.users()

    def remove(self, user: str) -> None:
        """Deletes a user's record (:class:`UnknownUserError` if there is none) and continual
        buffer."""
        self._name(user)  # checked; the spelling as given also finds an older store's record
        self.store.remove(user)
        forget(self.store, user)

    def wipe(self) -> int:
        """Deletes every user's record (and continual buffer); returns how many records."""
        forget_all(self.store)
        return self.store.wipe()

    @staticmethod
    def _name(user: Any) -> str:
        try:
            return check_name(user)
        except ValueError as err:
            raise EnrollmentError(str(err)) from None

    # -- enrollment -------------------------------------------------------------------------
    def trainable_scopes(self) -> tuple[str, ...]:
        """Exported scopes this artifact can train honestly (wider ones need background features
        for their negatives and their threshold)."""
        return tuple(s for s in self.scopes if s == "head" or self.has_features)

    def plan(
        self, samples: int, *, train: bool = True, image: Sequence[int] | None = None
    ) -> dict[str, ScopePlan]:
        """Predicted enrollment peak of each trainable scope (or of imprinting only) for
        ``samples`` enrollment images of shape ``image`` (raw uint8 ``(h, w)`` or
        ``(h, w, c)`` from the sensor, at ``sensor_dpi``; default: the smallest the
        preprocessing takes, its crop window or the model input). A fusing Device counts
        finding the captures' prints too."""
        if image is None:  # the smallest is in the artifact's pixels (500 dpi)
            work = self._capture_work(self._smallest_image(), np.uint8, SENSOR_DPI)
        else:
            work = self._capture_work(image, np.uint8, self.sensor_dpi)
        return self._plans(samples, SgdConfig(), self.background_count, work, train=train)

    def _smallest_image(self) -> tuple[int, int]:
        if self.spec.crop in ("none", "centre_square") or min(self.spec.crop_size) <= 0:
            return self.spec.input_size
        return self.spec.crop_size

    def _plans(
        self, n: int, sgd: SgdConfig, n_bg: int, work: int, *, train: bool
    ) -> dict[str, ScopePlan]:
        key = (n, sgd, n_bg, work, train)
        if key not in self._plan_memo:
            self._plan_memo[key] = self._plan_scopes(n, sgd, n_bg, work, train=train)
        return dict(self._plan_memo[key])

    def _plan_scopes(
        self, n: int, sgd: SgdConfig, n_bg: int, work: int, *, train: bool
    ) -> dict[str, ScopePlan]:
        d = int(self.manifest["embedding_dim"])
        fshape = self.manifest["signatures"][EMBED]["outputs"].get(FEATURES, {}).get("shape")
        feat = int(np.prod(fshape[1:])) if fshape else 0
        image = int(np.prod(self.spec.shape))
        batch = n + sgd.batch_negatives(n, n_bg // 2)
        # See personalize.memory: the background embeddings and their unit-length copy (float32,
        # both kept for the Device's life), the samples' inputs and the quality gate's float64
        # copy beside the interpreter; while loading, the model and the embeddings (the features
        # file is only hashed, a chunk at a time).
        # When the scope trains, beside them: the variables copied out of and into the
        # interpreter (runner outputs, their copies, the merged dict handed to set_weights) and
        # the training batch; a wider scope also holds the background features (float16) from
        # the start of its training to the end of its calibration, and before it trains, while
        # they are read and decoded (Artifact.features; devices.coded_features: the compressed
        # file, one byte codes and float16 values, under 4 bytes a value; a plain float16 file:
        # 2 + 2), ``embed`` has run on the samples. With test-time views, also their float32
        # batch (devices.views.make_views, made per call of CHUNK captures at most).
        emb, fea = n_bg * d, (n_bg * feat if self.has_features else 0)
        count = self.enroll_views.count
        views = 4 * count * min(n, CHUNK) * image if count > 1 else 0
        host = 12 * n * image + views + 8 * emb
        trained = 3 * 4 * self.graph.variable_params() + 4 * batch * max(d, feat)
        load = self.model_bytes + 6 * emb
        # Before the interpreter runs: the background embeddings (both copies), the inputs made
        # so far and the preprocessing of the largest raw image (``work``,
        # devices.preprocess.working_bytes).
        prepare = 8 * emb + 4 * n * image + work
        common = {EMBED: max(count * n, self.views.count), INFER: CHUNK, REFINE: CHUNK}
        scopes = self.trainable_scopes() if train else (NO_TRAINING,)
        plans = {}
        for scope in scopes:
            # Imprinting runs embed alone (get_weights' arena is the Device's since it was
            # made), then numpy: no variables copied in or out, no training batch.
            sigs, scope_host, decode = [EMBED, GET_WEIGHTS], host, 0
            batches = dict(common)
            if scope != NO_TRAINING:
                name = self.manifest["scopes"][scope]["signature"]
                sigs += [SET_WEIGHTS, INFER, name]
                scope_host = host + trained
                batches[name] = batch
                if trains_last_block(scope):
                    sigs.append(REFINE)
                    scope_host += 2 * fea
                    decode = host + 4 * fea
            plans[scope] = plan_enrollment(
                self.graph,
                self.profile,
                scope=scope,
                signatures=sigs,
                batches=batches,
                model_bytes=self.model_bytes,
                model_stats=self.model_stats,
                host_bytes=scope_host,
                load_bytes=load,
                prepare_bytes=prepare,
                held=(GET_WEIGHTS,),
                decode_bytes=decode,
                decoded_after=(EMBED,),
            )
        return plans

    def _choose_scope(self, plans: dict[str, ScopePlan], scope: str | None) -> ScopePlan:
        summary = ", ".join(f"{s} {p.peak_bytes:,} B" for s, p in plans.items())
        if scope is not None:
            plan = plans[scope]
            if plan.peak_bytes > self.budget:
                raise EnrollmentError(
                    f"scope {scope!r} needs {plan.peak_bytes:,} bytes (predicted peak), over the "
                    f"budget of {self.budget:,} bytes; nothing was changed."
                )
            return plan
        fitting = [p for p in plans.values() if p.peak_bytes <= self.budget]
        if not fitting:
            raise EnrollmentError(
                f"no training scope fits the memory budget of {self.budget:,} bytes "
                f"(profile {self.profile.name}): predicted peaks {summary}; the narrowest needs "
                f"{min(p.peak_bytes for p in plans.values()) - self.budget:,} bytes more; "
                "nothing was changed."
            )
        return fitting[-1]

    def _check_scope(self, scope: str | None, train: bool) -> str | None:
        if not train:
            if scope not in (None, NO_TRAINING):
                raise EnrollmentError(
                    f"train=False enrolls by imprinting only; scope {scope!r} would train nothing."
                )
            return NO_TRAINING
        if scope is None:
            return None
        if scope not in self.scopes:
            raise EnrollmentError(
                f"unknown scope {scope!r}; this artifact exports {', '.join(self.scopes)}."
            )
        if scope not in self.trainable_scopes():
            raise EnrollmentError(
                f"scope {scope!r} trains the last block, so its negatives and threshold need the "
                f"background people's features, and this artifact ships none "
                f"({BACKGROUND_FEATURES}); use scope 'head' or an artifact that has them."
            )
        return scope

    def enroll(
        self,
        user: str,
        images: np.ndarray | Sequence[np.ndarray],
        *,
        train: bool | None = None,
        scope: str | None = None,
        target_far: float = DEFAULT_FAR,
        sgd: SgdConfig | None = None,
        seed: int = 0,
        measure_memory: bool = True,
        offload: Offload | None = None,
    ) -> EnrollmentReport:
        """Enrolls (or re-enrolls: the report's ``replaced``) ``user`` from a few images of them.

        Args:
          user: the user name (printable, at most 100 characters).
          images: raw captures, ``(n, h, w[, c])`` or a list: uint8, uint16 or floats in [0, 1].
          train: ``False``: imprinting only (scope ``"none"``); ``None``: ``match.train`` says.
          scope: force a training scope (``head``, ``head_biases``, ``last_block``, or ``"none"``
            for imprinting only); default the widest whose predicted peak fits the budget.
          target_far: false accept rate the user's threshold is set for.
          sgd: learning rate, weight decay, steps and early stopping (:class:`SgdConfig`).
          seed: draws of the training negatives.
          measure_memory: measure the process's peak RSS rise (resets the process's VmHWM).
          offload: service, consent, situation (:func:`personalize.offload.offload_enrollment`).

        Returns an :class:`EnrollmentReport`.

        Raises:
          EnrollmentError: a refused sample (:class:`personalize.QualityError`, naming it and
            why), no scope within the budget (with the numbers) or bad arguments. Nothing is
            changed on disk when enrollment is refused.
          ArtifactError: the artifact changed on disk or fails verification.
        """
        t_start = time.perf_counter()
        request = self._request(user, train, scope, target_far, sgd)
        meter = PeakMeter()
        if measure_memory:
            meter.start()
        artifact = self._reverified()
        inputs = check_samples(images, self.spec, dpi=self.sensor_dpi)
        work = self._working_bytes(as_samples(images))
        plans = self._plans(
            len(inputs), request.sgd, len(artifact.background), work, train=request.train
        )
        embedded, embed_ms = self._embed_samples(inputs)
        prints = self.describe(images) if self.fuses else None
        chosen, fitted, outcome = self._fit(
            request, artifact, embedded, plans, seed, offload, prints
        )
        measured, note = self._measured_peak(meter if measure_memory else None)
        self._save(request, chosen.scope, fitted, embedded, len(inputs), outcome.meta(), prints)
        result, fit = fitted.result, fitted.fit
        return EnrollmentReport(
            user=request.user,
            samples=len(inputs),
            scope=chosen.scope,
            predicted_peak_bytes=chosen.peak_bytes,
            measured_peak_bytes=measured,
            budget_bytes=self.budget,
            embed_ms=embed_ms,
            train_ms=fitted.train_ms,
            steps=result.steps if result else 0,
            final_loss=result.final_loss if result else None,
            threshold=fit.threshold,
            target_far=request.target_far,
            initial_loss=result.initial_loss if result else None,
            stopped_early=result.stopped_early if result else False,
            stop_reason=result.stop_reason if result else "",
            calibrate_ms=fitted.calibrate_ms,
            total_ms=1e3 * (time.perf_counter() - t_start),
            threshold_method=fit.method,
            impostors=fit.impostors,
            plans={s: p.peak_bytes for s, p in plans.items()},
            memory_note=note,
            where=outcome.where,
            offload=outcome.to_dict(),
            replaced=request.replaced,
        )

    def _working_bytes(self, captures: Sequence[np.ndarray]) -> int:
        """The largest working peak of the enrollment's captures (:meth:`_capture_work`)."""
        return max(self._capture_work(x.shape, x.dtype, self.sensor_dpi) for x in captures)

    def _capture_work(self, shape: Sequence[int], dtype: Any, dpi: float) -> int:
        """The preprocessing peak of a capture of ``shape`` and ``dtype`` taken at ``dpi``, or,
        when enrollment fuses, finding its prints' if larger
        (:func:`devices.print_minutiae.working_bytes`, at 500 dpi)."""
        work = working_bytes(self.spec, shape, dtype, dpi)
        if not self.fuses:
            return work
        return max(work, print_working_bytes(sensor_shape(shape, dpi)))

    def _measured_peak(self, meter: PeakMeter | None) -> tuple[int | None, str]:
        """The enrollment's measured peak (the RSS rise over what the device held before) and
        the report's memory note; ``(None, ...)`` when not measured or not measurable."""
        if meter is None:
            return None, MEMORY_NOTE
        rise = meter.stop()
        if rise is None or self._held_bytes is None:
            why = meter.error or "no /proc resident counters"
            return None, f"peak RSS not measurable here: {why}"
        return rise + self._held_bytes, MEMORY_NOTE

    def _templates(self, embedded: dict[str, np.ndarray]) -> np.ndarray | None:
        """The owner's templates a record keeps (None when the match config keeps none)."""
        return templates_of(embedded[EMBEDDINGS]) if self.match.templates else None

    def _start_continual(self, user: str, embedded: dict[str, np.ndarray]) -> None:
        """The enrollment captures anchor the user's later continual updates (if enabled)."""
        if self.continual is not None:
            self.continual.start(user, embedded)

    def _embed_samples(self, inputs: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
        """Step 4: the samples' ``embed`` outputs, and the milliseconds it took."""
        t0 = time.perf_counter()
        embedded = self._run_embed(inputs, self.enroll_views)
        return embedded, 1e3 * (time.perf_counter() - t0)

    def _fit(
        self,
        request: _Request,
        artifact: Artifact,
        embedded: dict[str, np.ndarray],
        plans: dict[str, ScopePlan],
        seed: int,
        offload: Offload | None,
        prints: PrintSet | None = None,
    ) -> tuple[ScopePlan, Fitted, OffloadOutcome]:
        """Steps 5-7 by the offload service when the policy sends them and its signed reply
        verifies; otherwise here, in the widest scope that fits. A fused enrollment (``prints``:
        the owner's) stays here: the service holds no prints to set the threshold on."""
        outcome = OffloadOutcome()
        if offload is not None and request.train and prints is None:
            outcome = offload_enrollment(self, offload, request, embedded, plans, seed)
        if outcome.remote is not None:
            # the local plan of the scope the service trained (what it would have cost here)
            return plans[outcome.remote.scope], self._install(outcome.remote), outcome
        chosen = self._choose_scope(plans, request.scope)
        fitted = self.fit_embedded(
            embedded,
            chosen.scope,
            request.sgd,
            request.target_far,
            seed=seed,
            artifact=artifact,
            prints=prints,
        )
        return chosen, fitted, outcome

    def _request(
        self,
        user: Any,
        train: bool | None,
        scope: str | None,
        target_far: float,
        sgd: SgdConfig | None,
    ) -> _Request:
        """Step 0: the arguments, checked, and whether the user has a record to replace."""
        name = self._name(user)
        if train is None:
            train = self.match.train or scope not in (None, NO_TRAINING)
        train = train and scope != NO_TRAINING  # scope="none" also means imprinting only
        forced = self._check_scope(scope, train)
        if not 0.0 < float(target_far) < 1.0:
            raise EnrollmentError(f"target_far must be in (0, 1), got {target_far!r}.")
        replaced = self.store.has(name)
        return _Request(name, train, forced, float(target_far), sgd or SgdConfig(), replaced)

    def _reverified(self) -> Artifact:
        """Step 1: the verified artifact, if its files are unchanged on disk (by their stat);
        otherwise verified again in full (signature, every file) and refused unless it is the
        same artifact.

        Raises:
          ArtifactError: a file changed and fails verification, or the artifact is another one.
        """
        if self._artifact is not None and unchanged(self._artifact):
            return self._artifact
        # Dropped first: a refused artifact is not used again, and the old arrays do not sit
        # beside the new ones while they load (the plan's load_bytes).
        model = self._artifact.model if self._artifact is not None else None
        self._artifact = None
        artifact = load_artifact(self.artifact_dir, self.trusted_key)
        trim_heap()  # hand the verified files' freed bytes back before the interpreter runs
        if artifact_id(artifact.manifest) != self.artifact_id:
            raise ArtifactError(
                f"{self.artifact_dir}: the artifact changed since this Device was created; "
                "create a new Device (users enrolled on the old one must enroll again)."
            )
        # the same files (the manifest lists their hashes): keep the bytes the interpreter runs
        self._artifact = artifact if model is None else artifact._replace(model=model)
        return self._artifact

    def fit_embedded(
        self,
        embedded: dict[str, np.ndarray],
        scope: str,
        sgd: SgdConfig,
        target_far: float,
        *,
        seed: int = 0,
        artifact: Artifact | None = None,
        prints: PrintSet | None = None,
    ) -> Fitted:
        """Steps 5-7 on embedded samples: imprint the head, SGD with weight decay through the
        scope's signature, the threshold; the offload service runs this same method.

        Args:
          embedded: the samples' ``embed`` outputs (``embeddings``; ``features`` for a scope
            that trains the last block).
          scope: an exported trainable scope, or ``"none"`` (imprinting only).
          artifact: this Device's artifact, verified by the caller; default checked here (step 1).
          prints: the owner's prints (:meth:`describe`): the threshold is set on the fused
            scores (:mod:`personalize.fusion`); None: on the embedding's alone.

        Raises:
          EnrollmentError: ``prints`` for an artifact that ships no fusion.
        """
        if prints is not None and self._fusion is None:
            raise EnrollmentError("owner prints given, but the artifact ships no fusion.")
        artifact = artifact or self._reverified()
        interp = self._interp
        t0 = time.perf_counter()
        # The rows the scope trains against and calibrates on; a wider scope's features are
        # decoded here and dropped when this call returns (personalize.memory plans it so).
        rows = None if scope == NO_TRAINING else self._background(artifact, scope)
        kernel = imprint_kernel(embedded[EMBEDDINGS], self._centres)
        result: TrainResult | None = None
        if rows is None:
            weights = {HEAD: kernel}  # imprinting alone: nothing for the interpreter to do
        else:
            self._set_weights(interp, {**self._pristine, HEAD: kernel})
            result = self._train(interp, rows, embedded, scope, sgd, seed)
            weights = self._changed(scope, self._get_weights(interp))
        train_ms = 1e3 * (time.perf_counter() - t0)
        t0 = time.perf_counter()
        templates = self._templates(embedded)
        fit = self._calibrate(interp, rows, scope, target_far, weights, templates, prints)
        return Fitted(weights, result, fit, train_ms, 1e3 * (time.perf_counter() - t0))

    def _train(
        self,
        interp: Any,
        rows: np.ndarray,
        embedded: dict[str, np.ndarray],
        scope: str,
        sgd: SgdConfig,
        seed: int,
    ) -> TrainResult:
        """Step 6: SGD through the scope's train signature on fresh negatives each step (from the
        first half of the background ``rows`` the scope reads); with ``sgd.keep_best`` the
        weights end as those of the step (0: imprinted) that scored best on the held-out
        negatives (:func:`personalize.head.holdout_margin`)."""
        source = train_input(scope)
        first_half = rows[: len(rows) // 2]
        labels = (self._proto + 1).astype(np.int32)
        held = min(sgd.holdout, len(first_half) // 4) if sgd.keep_best else 0
        train_rows, held_rows = first_half[: len(first_half) - held], first_half[-held:]
        step = interp.get_signature_runner(self.manifest["scopes"][scope]["signature"])
        validation = None
        if held:
            owner = embedded[source]
            rows = np.concatenate([owner, held_rows]).astype(np.float32)

            def score() -> float:
                s = self._head_scores(interp, rows, trains_last_block(scope))
                return holdout_margin(s[: len(owner)], s[len(owner) :])

            validation = Validation(score, lambda: self._get_weights(interp))
        result = run_sgd(
            step,
            source,
            embedded[source],
            train_rows,
            labels[: len(train_rows)],
            sgd,
            seed=seed,
            validation=validation,
        )
        if result.best_state is not None:
            self._set_weights(interp, result.best_state)
        return result

    def _head_scores(self, interp: Any, rows: np.ndarray, wide: bool) -> np.ndarray:
        """Cosines of ``rows`` (embeddings, or the front's features when ``wide``) with the
        head column the interpreter holds now."""
        refine = interp.get_signature_runner(REFINE) if wide else None
        infer = interp.get_signature_runner(INFER)
        scores = []
        for i in range(0, len(rows), CHUNK):
            e = rows[i : i + CHUNK]
            if refine is not None:  # features are stored float16 (personalize.Artifact.features)
                e = refine(**{FEATURES: np.asarray(e, np.float32)})[EMBEDDINGS]
            scores.append(infer(**{EMBEDDINGS: np.asarray(e, np.float32)})[SCORES][:, 0])
        return np.concatenate(scores) / self.scale

    def _changed(self, scope: str, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The tensors ``scope`` trains (the head alone for imprinting)."""
        names = (
            [tensor_name(n) for n in self.manifest["scopes"][scope]["trains"]]
            if trains_last_block(scope)
            else [HEAD]
        )
        return {k: weights[k] for k in names}

    def trained_tensors(self, scope: str) -> dict[str, tuple[int, ...]]:
        """The tensors an enrollment of ``scope`` changes and keeps: name -> shape."""
        return {k: v.shape for k, v in self._changed(scope, self._pristine).items()}

    @staticmethod
    def _install(remote: Remote) -> Fitted:
        """The service's weights and threshold (verified and checked by the offload client)."""
        return Fitted(dict(remote.weights), None, remote.fit, 0.0, 0.0)

    @staticmethod
    def _background(artifact: Artifact, scope: str) -> np.ndarray:
        """The background rows ``scope`` reads: embeddings, or the front's features (read,
        verified and decoded now: :meth:`personalize.Artifact.features`).

        Raises:
          ArtifactError: the features file changed since the artifact was verified, or is
            malformed.
        """
        rows = artifact.features() if trains_last_block(scope) else artifact.background
        assert rows is not None  # trainable_scopes() holds wider scopes back without features
        return rows

    def _calibrate(
        self,
        interp: Any,
        rows: np.ndarray | None,
        scope: str,
        target_far: float,
        weights: dict[str, np.ndarray],
        templates: np.ndarray | None = None,
        prints: PrintSet | None = None,
    ) -> TailFit:
        """Step 7: the threshold from the background rows the head was not trained against (the
        held-out half after SGD, every row after imprinting only), scored as a probe by the
        Device's match rule (over ``templates`` when it uses them) with the user's ``weights``
        (the interpreter holds them too when the scope trained). ``rows``: the background rows
        the scope trained against (None for imprinting only). With the owner's ``prints``, the
        background people's fused scores (their prints are the same rows)."""
        start = 0 if scope == NO_TRAINING else len(self._background_unit) // 2
        unit = self._background_unit[start:]
        if trains_last_block(scope):
            assert rows is not None
            head = self._head_scores(interp, rows[start:], True)
        else:
            head = user_cosines(unit, weights[HEAD], unit=True)
        scores = match_scores(self.match, head, unit, templates, unit=True)
        if prints is None:
            return threshold_at_far(scores, target_far, cosine=True)
        assert self._fusion is not None  # fit_embedded checked
        fused = scores + self._fusion.background(prints, start)
        return fused_threshold_at_far(fused, target_far, self._fusion.weight)

    def _save(
        self,
        request: _Request,
        scope: str,
        fitted: Fitted,
        embedded: dict[str, np.ndarray],
        samples: int,
        extra: dict[str, Any],
        prints: PrintSet | None = None,
    ) -> None:
        """Step 8: the user's changed weights, threshold, templates (of ``embedded``) and prints,
        encrypted on disk; the enrollment captures anchor continual learning (if enabled)."""
        templates = self._templates(embedded)
        weights, fit = fitted.weights, fitted.fit
        meta = {
            "artifact": self.artifact_id,
            "target_far": request.target_far,
            "samples": samples,
            "threshold_method": fit.method,
            "tail": [fit.tail, fit.xi, fit.sigma, fit.u],
            "enrolled_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "match": dataclasses.asdict(self.match),
            "best_step": fitted.result.best_step if fitted.result else 0,
            **self._dpi_meta(),
            **extra,
        }
        record = UserRecord(request.user, fit.threshold, scope, weights, meta, templates, prints)
        self.store.save(record)
        self._start_continual(request.user, embedded)

    # -- matching ---------------------------------------------------------------------------
    def _record(self, user: str) -> UserRecord:
        self._name(user)  # checked; the spelling as given also finds an older store's record
        record = self.store.load(user)
        if record.meta.get("artifact") != self.artifact_id:
            raise StoreError(
                f"user {user!r} was enrolled with another artifact "
                f"({record.meta.get('artifact')}, this one is {self.artifact_id}); enroll again."
            )
        enrolled = record.meta.get("sensor_dpi", self.sensor_dpi)  # older records: unchecked
        if enrolled != self.sensor_dpi:
            raise SensorDpiError(
                f"user {user!r} was enrolled from captures at {enrolled:g} dpi; this Device takes "
                f"them at {self.sensor_dpi:g} dpi (sensor_dpi), so the owner's captures would be "
                f"scaled wrongly. Construct it with sensor_dpi={enrolled:g}, or enroll again.",
                user=user,
                enrolled=enrolled,
                given=self.sensor_dpi,
            )
        return record

    def _dpi_meta(self) -> dict[str, float]:
        """A print record keeps the resolution its captures came at, which :meth:`_record`
        checks: a Device later constructed with another ``sensor_dpi`` would scale the owner's
        captures wrongly and reject them without saying why."""
        return {"sensor_dpi": self.sensor_dpi} if self.spec.modality == "fingerprint" else {}

    def record_of(
        self,
        user: str,
        embedded: dict[str, np.ndarray],
        scope: str,
        sgd: SgdConfig | None = None,
        *,
        target_far: float = DEFAULT_FAR,
        seed: int = 0,
        prints: PrintSet | None = None,
    ) -> tuple[UserRecord, Fitted]:
        """An enrollment from embedded samples kept in memory, not saved (what a selection
        script scores many variants of; :meth:`score_record` scores it as :meth:`verify` would).
        ``prints``: the samples' prints (:meth:`describe`), which a fusing Device needs.

        Raises:
          EnrollmentError: a fusing Device without ``prints``, or ``prints`` for one that does
            not fuse.
        """
        if self.fuses != (prints is not None):
            raise EnrollmentError(
                "this Device fuses the minutiae score: pass the samples' prints (describe)"
                if self.fuses
                else "this Device does not fuse the minutiae score: pass no prints."
            )
        fitted = self.fit_embedded(
            embedded, scope, sgd or SgdConfig(), target_far, seed=seed, prints=prints
        )
        meta = {"match": dataclasses.asdict(self.match), "target_far": target_far}
        templates = self._templates(embedded)
        record = UserRecord(user, fitted.fit.threshold, scope, fitted.weights, meta, templates)
        return record._replace(prints=prints), fitted

    def score_record(
        self,
        embedded: dict[str, np.ndarray],
        record: UserRecord,
        prints: PrintSet | None = None,
    ) -> np.ndarray:
        """The scores :meth:`scores` gives, for a record held in memory: each capture's best
        window (:mod:`personalize.windows`; most captures have one) by :meth:`_window_scores`,
        plus the weighted minutiae score of the captures' ``prints`` for a record that keeps
        prints."""
        scores = best_window(embedded, lambda w: self._window_scores(w, record))[0]
        return scores + self._minutiae_scores(record, prints)

    def describe(self, images: np.ndarray | Sequence[np.ndarray]) -> PrintSet:
        """The minutiae and readable masks of raw fingerprint captures (at this Device's
        ``sensor_dpi``), as enrollment and verification find them for the fusion.

        Raises:
          EnrollmentError: the artifact ships no fusion (not a fingerprint artifact, or exported
            without the background prints).
        """
        if self._fusion is None:
            raise EnrollmentError("this artifact ships no minutiae fusion (background prints).")
        captures = self._at_sensor(as_samples(cast(Sequence[np.ndarray], images)))
        return self._fusion.describe(captures)

    def embed(self, images: np.ndarray | Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The artifact's ``embed`` outputs (``embeddings``, and ``features`` when a wider scope
        is exported) of many raw captures, preprocessed as enrollment does but without the quality
        gate (for scoring a whole evaluation set; ``verify`` gates each capture). With a second
        registration hypothesis in the spec, the further windows' outputs ride along
        (:mod:`personalize.windows`)."""
        captures = self._at_sensor(cast(Sequence[np.ndarray], images))
        if self.spec.max_views == 1:
            return self.embed_inputs(preprocess_batch(captures, self.spec))
        return self._with_windows([preprocess_views(x, self.spec) for x in captures])

    def _with_windows(self, views: list[np.ndarray]) -> dict[str, np.ndarray]:
        """The ``embed`` outputs of captures' windows (``(v, *input shape)`` each, v >= 1): the
        first windows', then each further window's (a capture without it repeats its first;
        only the windows there are run)."""
        first = self.embed_inputs(np.stack([v[0] for v in views]))
        further: dict[str, list[np.ndarray]] = {k: [] for k in first}
        for j in range(1, self.spec.max_views):
            rows = {k: np.array(v, copy=True) for k, v in first.items()}
            have = [i for i, v in enumerate(views) if len(v) > j]
            if have:
                out = self.embed_inputs(np.stack([views[i][j] for i in have]))
                for k in rows:
                    rows[k][have] = out[k]
            for k in rows:
                further[k].append(rows[k])
        stacked = {k: np.stack(v, axis=1).reshape(-1, *v[0].shape[1:]) for k, v in further.items()}
        return with_windows(first, stacked, self.spec.max_views - 1)

    def embed_inputs(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """The ``embed`` outputs of model inputs already preprocessed (``(n, *input shape)``
        float32, as :func:`devices.preprocess.preprocess_batch` gives them; averaged over the
        artifact's test-time views, as verified captures are).

        Raises:
          EnrollmentError: inputs of another shape (the signature runner would resize its input
            tensor to them and embed them without a word).
        """
        inputs = np.asarray(inputs)
        if inputs.ndim != 1 + len(self.spec.shape) or tuple(inputs.shape[1:]) != tuple(
            self.spec.shape
        ):
            raise EnrollmentError(
                f"model inputs of shape {inputs.shape}; this artifact takes (n, "
                f"{', '.join(map(str, self.spec.shape))}): preprocess raw captures with "
                "Device.embed (devices.preprocess.preprocess_batch)."
            )
        chunks = [self._run_embed(inputs[i : i + CHUNK]) for i in range(0, len(inputs), CHUNK)]
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}

    def scores(
        self,
        user: str,
        images: np.ndarray | Sequence[np.ndarray] | dict[str, np.ndarray],
        prints: PrintSet | None = None,
    ) -> np.ndarray:
        """The scores ``verify`` gives, of many captures against ``user`` at once.

        Args:
          user: an enrolled user.
          images: raw captures, or what :meth:`embed` returned for them (to score many users
            without embedding the captures again).
          prints: with embedded ``images``, the captures' prints (:meth:`describe`), which a
            user enrolled with the minutiae fusion needs; found here for raw captures.

        Returns:
          ``(n,)`` float scores: cosines, plus the weighted minutiae score for a fused record.
        """
        self._reverified()
        record = self._record(user)
        if isinstance(images, dict):
            return self.score_record(images, record, prints)
        if record.prints is not None and prints is None:
            prints = self.describe(images)
        return self.score_record(self.embed(images), record, prints)

    def _embed(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """One capture's ``embed`` outputs, as :meth:`embed` gives them (after the gate)."""
        image, dpi = np.asarray(image), self.sensor_dpi
        if self.spec.max_views == 1:
            return self._run_embed(check_image(image, self.spec, dpi=dpi)[None])
        return self._with_windows([check_image(image, self.spec, views=True, dpi=dpi)])

    def _run_embed(
        self, inputs: np.ndarray, views: TestViews | None = None
    ) -> dict[str, np.ndarray]:
        """The ``embed`` outputs of preprocessed ``inputs``; with test-time views (default the
        artifact's), every view of the images runs as one batch, the embeddings are their view
        averages and the features (when the artifact has wider scopes) the images' own."""
        views = self.views if views is None else views
        runner = self._interp.get_signature_runner(EMBED)
        if views.count == 1:
            return runner(**{IMAGES: inputs})
        every = runner(**{IMAGES: make_views(inputs, views)})
        out = {EMBEDDINGS: average_views(every[EMBEDDINGS], views.count)}
        if FEATURES in every:
            out[FEATURES] = every[FEATURES][: len(inputs)]
        return out

    def _minutiae_scores(self, record: UserRecord, prints: PrintSet | None) -> np.ndarray | float:
        """The weighted minutiae scores of captures' ``prints`` against ``record``'s (0 for a
        record enrolled without the fusion).

        Raises:
          EnrollmentError: the record keeps prints and the captures' are not given.
        """
        if record.prints is None:
            return 0.0
        if prints is None:
            raise EnrollmentError(
                f"user {record.user!r} was enrolled with the minutiae fusion: pass the captures' "
                "prints (Device.describe) with embedded captures."
            )
        assert self._fusion is not None  # the record names this artifact, which ships it
        return self._fusion.scores(prints, record.prints)

    def _window_scores(self, embedded: dict[str, np.ndarray], record: UserRecord) -> np.ndarray:
        """Scores of one window of embedded captures for ``record`` by the match rule its
        threshold was set with (the record's ``meta["match"]``; the head alone for records
        without templates)."""
        head = self._head_scores_of(embedded, record)
        rule = record.meta.get("match")
        match = MatchConfig(**rule) if isinstance(rule, dict) else MatchConfig(rule="head")
        return match_scores(match, head, embedded[EMBEDDINGS], record.templates)

    def _head_scores_of(self, embedded: dict[str, np.ndarray], record: UserRecord) -> np.ndarray:
        """Cosines of embedded captures with ``record``'s head: with its column (the ``infer``
        signature's cosine, :func:`personalize.head.user_cosines`), or through its trained last
        block (``refine`` then ``infer``, output 0 / scale)."""
        if not trains_last_block(record.scope):
            return user_cosines(embedded[EMBEDDINGS], record.weights[HEAD])
        self._set_weights(self._interp, {**self._pristine, **record.weights})
        refine = self._interp.get_signature_runner(REFINE)
        infer = self._interp.get_signature_runner(INFER)
        out = []
        for i in range(0, len(embedded[EMBEDDINGS]), CHUNK):
            e = refine(**{FEATURES: embedded[FEATURES][i : i + CHUNK]})[EMBEDDINGS]
            out.append(infer(**{EMBEDDINGS: e})[SCORES][:, 0])
        return np.concatenate(out) / self.scale

    def verify(self, user: str, image: np.ndarray, *, adapt: bool = True) -> Decision:
        """Is ``image`` the enrolled ``user``? With ``continual`` set and ``adapt``, an accepted
        capture may update the user's record (:meth:`personalize.continual.Continual.observe`;
        what it did: ``self.continual.last``).

        Raises:
          UnknownUserError: ``user`` is not enrolled.
          StoreError: the record is refused (tampered, wrong key, other artifact).
          QualityError: the image is refused by the quality gate (blank, saturated, ...).
          ArtifactError: the artifact changed on disk and fails verification.
        """
        self._reverified()
        record = self._record(user)
        embedded = self._embed(image)
        scores, which = best_window(embedded, lambda w: self._window_scores(w, record))
        prints = None if record.prints is None else self.describe([image])
        score = float((scores + self._minutiae_scores(record, prints))[0])
        decision = Decision(score >= record.threshold, score, record.threshold)
        if adapt and self.continual is not None:
            # The window that matched is the one the user's buffer learns from.
            self.continual.observe(record, window_of(embedded, 0, int(which[0])), decision)
        return decision

    def identify(self, image: np.ndarray) -> tuple[str | None, float]:
        """The enrolled user ``image`` shows, or ``None``; and that user's (or the best) score
        (:meth:`identification`, without the records it skipped)."""
        found = self.identification(image)
        return found.user, found.score

    def identification(self, image: np.ndarray) -> Identification:
        """Who ``image`` shows, among the users whose record this Device can score.

        Among the users whose threshold the score reaches, the one with the largest margin
        (score - threshold) wins. A record that cannot be read (tampered, rolled back) or
        scored here (another artifact, another sensor resolution) is skipped, and named in
        ``skipped`` with the reason: one user's record does not lock everyone out.
        """
        self._reverified()
        embedded = self._embed(image)
        best: tuple[str | None, float] = (None, float("-inf"))
        margin = float("-inf")
        top = float("-inf")
        prints: PrintSet | None = None
        listing = self.store.listing()
        skipped: list[PersonalizeError] = [StoreError(line) for line in listing.unreadable]
        for user in listing.users:
            try:
                record = self._record(user)
            except (StoreError, UnknownUserError) as err:  # unknown: removed since listed
                skipped.append(err)
                continue
            if record.prints is not None and prints is None:
                prints = self.describe([image])  # once, for every fused record
            score = float(self.score_record(embedded, record, prints)[0])
            top = max(top, score)
            if score >= record.threshold and score - record.threshold > margin:
                best, margin = (user, score), score - record.threshold
        if best[0] is None:
            return Identification(None, top, skipped)
        return Identification(best[0], best[1], skipped)

    # -- weights I/O ------------------------------------------------------------------------
    @staticmethod
    def _get_weights(interp: Any) -> dict[str, np.ndarray]:
        out = interp.get_signature_runner(GET_WEIGHTS)(**{UNUSED: np.int32(0)})
        return {k: np.array(v, np.float32) for k, v in out.items()}

    @staticmethod
    def _set_weights(interp: Any, weights: dict[str, np.ndarray]) -> None:
        interp.get_signature_runner(SET_WEIGHTS)(
            **{k: np.asarray(v, np.float32) for k, v in weights.items()}
        )
