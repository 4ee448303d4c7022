"""Fingerprint EmbedNet on prints whose ridge flow is bent around the core, as real flow is: the
committed backbone (``embed_fingerprint_partial.py``'s) continued on a generator that also turns
the master's orientation field by a smooth random field (``orientation_noise``).

Why (``data stats``, :mod:`pretrain.data.stats`): the device's core registration lands on
different points of two impressions of one finger (``misregistered_fraction``) for 19-46% of the
five FVC sensor sets' genuine pairs (median of the five 32.9%), 14.3% of the partial-contact
generator's; its core filter answers the generator's cores more strongly (median
``core_strength`` 947 against FVC's 723-854): the zero-pole orientation model's singular points
are perfectly symmetric, real ones are not. The backbone has rarely seen a print its device
registered on the wrong point.

The generator setting (``GENERATOR``: the partial-contact one plus ``orientation_noise``),
chosen from those statistics and nothing else, among three measured on 20 identities x 8
(``python -m pretrain data stats --source synthetic --identities 20 --pairs --generator
'<options>'``, 2026-12-05), by the rule: the misregistered share inside the sensor sets' range
(19-46%), the closest to their median (32.9%):
- 0.45 rad: misregistered 22.1%, core strength median 907.5, coherence 0.63;
- **0.6 rad**: 33.6%, 889.5, 0.62: chosen;
- 0.75 rad: 34.3%, 850.5, 0.61 (its flow visibly wavier than any FVC print's).
Period (10.1 px), core depth (49-51 px) and coherence stay as the partial-contact generator's
(10.1, 48.7, 0.64). The core strength stays above FVC's at 0.6: reported, not chased.

Command (resumable: ``--resume`` continues the newest checkpoint):
  POCKETFIT_DATA=/work/shared/datasets XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= \\
    POCKETFIT_CACHE=/work/main/runs/cache python -m pretrain \\
    --config pretrain/configs/embed_fingerprint_bent.py --workdir /work/runs/prints_bent --resume
  then the decision: python notebooks/bench/bench_fingerprint_generator.py \\
    --config pretrain/configs/embed_fingerprint_bent.py --candidate /work/runs/prints_bent/model

What chooses what (registered before the run, 2026-12-05; dev = synthetic validation identities
0-99 x 8, seed 0, never trained on):
- the checkpoint: the epoch with the lowest dev EER on prints of this generator (the trainer's
  validation);
- adoption: this backbone replaces notebooks/results/models/embed_fingerprint only if its dev
  EER on this generator's prints is at least 0.5 points below the committed backbone's on the
  same prints, and its dev EER on the partial-contact generator's prints (the committed
  backbone's own) is at most 0.5 points above the committed backbone's. FVC is reported for
  both, never used to choose. The committed backbone's figures, measured before the run
  (``bench_fingerprint_generator.py --config <this> --no-fvc``, no candidate;
  notebooks/results/fingerprint_bent.json): 8.21% on the partial-contact generator's dev prints,
  16.75% on this generator's. So the bars are <= 16.25% and <= 8.71%.
- the recipe otherwise is the committed backbone's own (``embed_fingerprint_scale2.py``: loss,
  rate, schedule, 4,000 training identities), started from its weights.

Measured 2026-12-05 (26 epochs, about 3.6 min each; continued the backbone committed at
b548556): dev EER on this generator's prints per epoch 12.59 11.64 11.83 11.86 10.93 10.89
10.39 9.82 9.32 9.29 9.25 9.21 8.61 8.86 8.71 8.82, then (rate 1e-3) 7.82 **7.75** 7.96 7.89
7.79, (1e-4) 7.86 7.81 7.89, (1e-5) 7.89 ..., early-stopped; epoch 18's kept.
**Not adopted** (notebooks/results/fingerprint_bent.json): on this generator's dev prints 7.75%
(bar <= 16.25%, committed 16.75%), but on the partial-contact generator's 15.11% (bar <= 8.71%,
committed 8.21%): the continued backbone forgot the prints it was trained on. A likely reading,
not tested: the bend makes each master's flow its own, the backbone learned to tell fingers by
their flow, and the unbent prints of one class hardly differ in it. FVC protocol, reported only: mean EER 18.44% against 19.64%, FNMR at
FMR 1% 45.9% against 44.3%.
"""

from pretrain.configs._continued import continued
from pretrain.configs.embed_fingerprint_partial import GENERATOR as PARTIAL
from pretrain.configs.embed_fingerprint_partial import get_config as partial

COMMITTED = "notebooks/results/models/embed_fingerprint"
GENERATOR = {**PARTIAL, "orientation_noise": 0.6}
BASE = ("partial", PARTIAL)  # the generator the committed backbone was trained on


def get_config() -> dict:
    return continued(partial(), "partial", "bent", GENERATOR, COMMITTED)
