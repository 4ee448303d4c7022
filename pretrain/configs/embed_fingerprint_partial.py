"""Fingerprint EmbedNet on prints whose core lies near the edge of the contact, as on real
sensors: the committed backbone (``embed_fingerprint_placement.py``'s) continued on a generator
that also lifts one side of the finger in most impressions.

Why (``data stats``, :mod:`pretrain.data.stats`): the device's core registration lands on
different points of two impressions of one finger for 19-46% of FVC's genuine pairs against a
few % of the generator's (``make bench-data``, notebooks/results/data.json); FVC's wrong picks
lie near the print's edge. In FVC the core the device finds lies a median 32-57 px inside the
print (the five sensor sets; p10 24 px), in the placement generator's prints 80 px (p10 34): the
backbone has rarely seen a core at the edge of the contact.

The generator setting (``GENERATOR``: the placement one plus ``partial_prob`` and
``partial_reach``), chosen from those statistics and nothing else, among three measured on
20 identities x 8 (``python -m pretrain data stats --source synthetic --identities 20 --pairs
--generator '<options>'``, 2026-12-05), by the rule: the median core depth inside the sensor
sets' range of medians (32-57 px):
- placement alone (partial contact 30%, edge 40-120 px from the window centre): core depth
  median 80.0 px (p10 33.8), misregistered pairs 11.4%;
- partial 60%, edge 10-80 px: 64.0 (p10 28.8), 11.4%;
- partial 90%, edge 0-60 px: **48.7** (p10 25.3), 14.3%: chosen.
The core's strength stays high (median 947 against FVC's 723-854): weak, hard-to-find cores are
another realism gap, not this setting's.

Command (resumable: ``--resume`` continues the newest checkpoint):
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= POCKETFIT_CACHE=/work/main/runs/cache \\
    nice -n 19 python -m pretrain --config pretrain/configs/embed_fingerprint_partial.py \\
    --workdir /work/runs/prints_partial --resume
  then the decision: python notebooks/bench/bench_fingerprint_generator.py \\
    --config pretrain/configs/embed_fingerprint_partial.py \\
    --candidate /work/runs/prints_partial/model

What chooses what (registered before the run, 2026-12-05; dev = synthetic validation identities
0-99 x 8, seed 0, never trained on):
- the checkpoint: the epoch with the lowest dev EER on prints of this generator (the trainer's
  validation);
- adoption: this backbone replaces notebooks/results/models/embed_fingerprint only if its dev
  EER on this generator's prints is at least 0.5 points below the committed backbone's on the
  same prints, and its dev EER on the placement generator's prints (the committed backbone's
  own) is at most 0.5 points above the committed backbone's. FVC is reported for both, never
  used to choose. The committed backbone, measured before the run (``bench_fingerprint_
  generator.py --config <this> --no-fvc``, no candidate; notebooks/results/
  fingerprint_partial.json): 2.82% on the placement generator's dev prints, 12.68% on this
  generator's. So the bars are <= 12.18% and <= 3.32%.

Measured 2026-12-05 (a bench sharing the cores for the first epochs, then free; 3.4 min an
epoch when free, 19 epochs, 1 h 47 min): dev EER on this generator's prints per epoch 9.82 9.62
9.29 9.32 9.39 9.46 (rate 1e-3) 8.57 8.27 8.43 8.31 8.32 (1e-4) 8.32 8.21 8.23 8.39 8.32
(1e-5) 8.32 8.29 8.29%, early-stopped; the best, epoch 13's, was kept as notebooks/results/
models/embed_fingerprint_partial (commit ed5e67e). The decision (bench_fingerprint_generator.py
at de8d562, fingerprint_partial.json): 8.21% on this generator's prints (bar 12.18) and 2.57% on
the placement prints (bar 3.32): adopted. FVC, reported only: mean EER 19.64% (committed 20.62%),
mean FNMR at FMR 1% 44.3% (54.1%); per set 15.7 / 19.6 / 26.4 / 19.6 / 16.8, SFinGe 12.5.
It is now the committed backbone, notebooks/results/models/embed_fingerprint, written by
``bench_embed.py --only fingerprint --fingerprint-model <that dir> --fingerprint-config
pretrain/configs/embed_fingerprint_partial.py`` (2026-12-05). So ``init_from`` below now names
this run's own result: to repeat the run, check out the backbone it continued
(embed_fingerprint_placement.py's, notebooks/results/models/embed_fingerprint at commit ed5e67e).
- the core pick (``devices.registration.RegistrationConfig``), checked again on this
  generator's dev prints with this run's backbone (a scratch check, 2026-12-05): requiring 3, 4
  or 5 blocks of foreground around a candidate instead of ``erode=2`` put fewer cores within
  16 px of the generator's (81 / 73 / 61% against 88%) and raised the EER (8.50 / 8.79 / 9.43%
  against 8.21); weighting the response by the filter's share on foreground (8.14-8.20%) or by
  a prior towards the print's centre (8.14-10.14%) moved it less than the 0.5 points a change
  would need. The pick stays as it is: on these prints it is right; FVC's wrong picks need
  prints that fool it (``embed_fingerprint_bent.py``).
- the recipe otherwise is the committed backbone's own (``embed_fingerprint_scale2.py``: loss,
  rate, schedule, 4,000 training identities), started from its weights.
"""

from pretrain.configs._continued import continued
from pretrain.configs.embed_fingerprint_placement import GENERATOR as PLACEMENT
from pretrain.configs.embed_fingerprint_placement import get_config as placement

COMMITTED = "notebooks/results/models/embed_fingerprint"
GENERATOR = {**PLACEMENT, "partial_prob": 0.9, "partial_reach": [0.0, 60.0]}
BASE = ("placement", PLACEMENT)  # the generator the committed backbone was trained on


def get_config() -> dict:
    return continued(placement(), "placement", "partial", GENERATOR, COMMITTED)
