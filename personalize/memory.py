"""Enrollment memory: the planner's prediction for the signatures enrollment runs, and the
measured peak of the enrolling process.

Predicted: the larger of two moments. While the interpreter runs: what
:func:`devices.plan_signature` says stays resident once the artifact is loaded (it includes the
model file), plus the step bytes of every signature an enrollment calls (``embed`` on the
samples, ``get_weights`` (run when the Device was made); when the scope trains,
``set_weights``, the scope's train step at the real batch, ``infer`` and, for wider scopes,
``refine`` on calibration chunks), summed because the interpreter keeps each subgraph's arena
once that subgraph has run (measured: the resident set grows with each new signature and does
not fall back), plus the host arrays then alive (the background embeddings in float32, the
samples' model inputs and the quality gate's float64 copy; when the scope trains, three copies
of the variables on their way out of and into the interpreter and the training batch; when it
trains the last block, the background people's front features in float16). While the artifact
is verified: the model file, the background arrays made so far and the file being converted
(its bytes and its values; see :func:`personalize.load_artifact`, which hashes the features
file without keeping it); the enrollment trims the heap after it, so those freed bytes do not
linger. While the samples are preprocessed (before the interpreter runs): the interpreter as
the Device created it, the background embeddings, the model inputs made so far and the
preprocessing's own peak for the largest raw image (:func:`devices.preprocess.working_bytes`:
a fingerprint's core registration of a 640x480 print alone allocates ~13 MB). While a scope
that trains the last block reads and decodes the front features
(:meth:`personalize.Artifact.features`, once per enrollment, before it trains): the interpreter
after ``embed`` ran on the samples, the host arrays and the file's bytes, codes and values.
Imprinting and the ``head`` scope never read the features. Not predicted: Python
objects (the parsed manifest, small temporaries) and allocator slack, tens to hundreds of KB.
Checked on a LeNet-300-100 artifact with 2,000 background people (a fresh process, first
enrollment, ~6 MB): measured / predicted = 1.04 (imprinting only) to 1.10 (head + biases).

Measured: what the Device's interpreter holds (the resident set its creation and first
``get_weights`` added when the Device was created, plus the verified model bytes it runs from)
plus the rise of this process's peak resident set (``VmHWM``) over its resident set at the
start of the enrollment, after a heap trim, with the runtime's code pages prefaulted once per process (so
code is not counted, as in :mod:`devices.measure`). The enrollment reuses that warm interpreter
(an app keeps one) and the verified artifact the Device keeps (its background arrays are
counted in what the Device holds), so its own rise covers the arenas of the signatures it runs
for the first time or at a new batch, embedding, training, calibration, and the artifact's full
re-verification in the call after one of its files changed on disk (which ``load_bytes`` plans).
It is the whole process's peak: other threads allocating at the same time would count too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from devices.graph import Graph
from devices.measure import MeasureError, prefault_libraries, reset_peak, rss_status, trim_heap
from devices.planner import plan_signature
from devices.profiles import Profile
from devices.tflite_file import ModelStats

_PREFAULTED = False


@dataclasses.dataclass(frozen=True)
class ScopePlan:
    """Predicted enrollment peak of one scope (``by_signature``: each signature's step bytes)."""

    scope: str
    batch: int
    interpreter_bytes: int
    host_bytes: int
    load_bytes: int
    by_signature: dict[str, int]
    prepare_bytes: int = 0
    decode_bytes: int = 0

    @property
    def peak_bytes(self) -> int:
        return max(
            self.interpreter_bytes + self.host_bytes,
            self.load_bytes,
            self.prepare_bytes,
            self.decode_bytes,
        )


def plan_enrollment(
    graph: Graph,
    profile: Profile,
    *,
    scope: str,
    signatures: Iterable[str],
    batches: dict[str, int],
    model_bytes: int,
    host_bytes: int,
    load_bytes: int,
    model_stats: ModelStats | None = None,
    prepare_bytes: int = 0,
    held: Iterable[str] = (),
    decode_bytes: int = 0,
    decoded_after: Iterable[str] = (),
) -> ScopePlan:
    """The peak of an enrollment that calls ``signatures`` with ``batches`` (others: as planned),
    with ``host_bytes`` of arrays alive beside the interpreter, ``load_bytes`` at the peak of
    verifying the artifact and ``prepare_bytes`` while the samples are preprocessed, beside the
    interpreter as it is before the enrollment runs it (resident, plus the arenas of the ``held``
    signatures it ran when it was created); ``decode_bytes`` (0: none) of host arrays while the
    background features are decoded, once the ``decoded_after`` signatures have run too."""
    specs = [dataclasses.replace(s, batch=batches.get(s.name, s.batch)) for s in graph.signatures]
    g = graph.with_signatures(specs)
    plans = {
        name: plan_signature(g, name, profile, model_bytes=model_bytes, model_stats=model_stats)
        for name in signatures
    }
    steps = {name: p.step_bytes for name, p in plans.items()}
    resident = max(p.resident_bytes for p in plans.values())
    train = next((n for n in plans if g.signature(n).kind == "train"), None)
    batch = batches.get(train, 0) if train else 0
    held = set(held)
    before = resident + sum(steps.get(s, 0) for s in held)
    interpreter = resident + sum(steps.values())
    decode = 0
    if decode_bytes:
        ran = before + sum(steps.get(s, 0) for s in set(decoded_after) - held)
        decode = ran + decode_bytes
    return ScopePlan(
        scope, batch, interpreter, host_bytes, load_bytes, steps, before + prepare_bytes, decode
    )


class PeakMeter:
    """Measures the rise of the process's peak RSS over a region (Linux; ``None`` elsewhere)."""

    def __init__(self) -> None:
        self.base: int | None = None
        self.error: str | None = None

    def start(self) -> None:
        global _PREFAULTED
        try:
            if not _PREFAULTED:
                prefault_libraries()
                _PREFAULTED = True
            trim_heap()
            reset_peak()
            self.base = rss_status()["VmRSS"]
        except (MeasureError, OSError) as err:
            self.base, self.error = None, str(err)

    def held(self) -> int | None:
        """Resident bytes gained since :meth:`start` and still held now (after a heap trim):
        what a region leaves behind, e.g. the Device's interpreter once it is built."""
        if self.base is None:
            return None
        try:
            trim_heap()
            return max(rss_status()["VmRSS"] - self.base, 0)
        except MeasureError as err:
            self.error = str(err)
            return None

    def stop(self) -> int | None:
        if self.base is None:
            return None
        try:
            return rss_status()["VmHWM"] - self.base
        except MeasureError as err:
            self.error = str(err)
            return None
