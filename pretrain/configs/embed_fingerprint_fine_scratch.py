"""Fingerprint EmbedNet with block 1's stride moved to block 4, trained from scratch on the twin
prints: ``embed_fingerprint_fine.py``'s network (strides (1, 1, 2, 2, 2, 1, 2, 1): blocks 1-2 at
the stem's 64 x 64 grid, where a ridge period is 1.9-3.1 px instead of 0.95-1.55), with
``embed_fingerprint_scale.py``'s recipe (SimCLR on 500 identities, then CosFace on 4,000 at
1e-2 until the plateau rule stops it) on the twin generator's prints
(``embed_fingerprint_twins.py``'s ``GENERATOR``: the flowmix prints, every identity paired with
a twin that shares its flow), on the committed backbone's anchor windows. Registered
2026-12-06, before any figure of it.

Why (dev only): below two pixels a ridge period the trunk's features alias the ridges from
block 1 on (``fingerprint_ablation.md``, "Ridges at full resolution"). Two continuations of the
committed backbone could not test it: moving the stride threw its weights back (fine: 6.45% dev
EER after one epoch against 4.91% at the start, best 5.73% in 8 epochs), and a fresh full-
resolution branch beside the trunk was barely used (ridge: the gate opened to 0.003 a channel).
A network that never learnt on aliased ridges is the test that remains. The committed lineage
took about 80 epochs over several generators; this one gets one generator and up to 40 epochs
(each about twice the committed net's multiply-adds: ~23 M against ~11 M).

What chooses what (dev = synthetic validation identities 0-99 x 8 of the twin generator, seed
0, never trained on):
- each stage's checkpoint: its epoch with the lowest dev EER (the trainer's validation);
  the stage's budget: the plateau rule (patience 3, x0.1, stop after 8 epochs without a best);
- adoption: ``embed_fingerprint_twins.py``'s bars, measured on the committed backbone before
  those runs: <= 4.41% dev EER on the twin prints and <= 4.18% on the flowmix prints
  (``bench_fingerprint_generator.py --config`` this file ``--candidate <workdir>/model``). The
  twin EER (genuine against twin pairs) is reported as the yardstick of ridge detail; FVC is
  reported only.
- everything else is the named configs' own: the scale recipe's rates, batch, margin and
  augmentation; the fine run's strides; the twins run's prints and windows.

Measured (2026-12-06, 18:08 UTC to 23:40 UTC across two sessions): SimCLR dev EER per epoch
48.86 48.68 46.79% (62 steps each; the scale lineage's first two read 41.8 and 36.8 on its easier
prints at the coarse strides); CosFace epochs 1-26 36.64 32.44 29.94 26.50 21.36 14.14 12.82 10.92
10.14 10.04 9.14 8.82 7.54 8.00 7.91 8.28 | 7.29 **6.79** 6.81 7.04 6.86 | 6.93 6.92 6.81 6.84
6.85% (400-1,260 s each on the shared cores; the rate cut to 1e-3 at epoch 17, 1e-4 at 22, 1e-5
at 25; stopped by the plateau rule after epoch 26, eight without a best). The run's model is
epoch 18's (the same parameters as the snapshot measured during epoch 24). The decision
(``bench_fingerprint_generator.py``, fingerprint_fine_scratch.json): 6.79% on twin prints (bar
4.41), 6.19% on flowmix prints (bar 4.18), twin EER 49.5% (committed 43.5): **not adopted**;
FVC, reported only, 13.33% against the committed backbone's 12.20% in the same run (paired
interval -1.53 to +5.19 points). Its control from scratch at the committed strides:
``embed_fingerprint_coarse_scratch.py`` (a tie: 6.75%, 2026-12-07).

Command (resumable: ``--resume`` continues the newest checkpoint; a finished stage is skipped;
the run spans sessions):
  POCKETFIT_DATA=/work/shared/datasets XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= \\
    POCKETFIT_CACHE=/work/main/runs/cache python -m pretrain \\
    --config pretrain/configs/embed_fingerprint_fine_scratch.py \\
    --workdir /work/runs/prints_fine_scratch --resume --no-evaluation
  an interim look: python -m pretrain snapshot --workdir /work/runs/prints_fine_scratch
    --stage fine_scratch (the best epoch so far, into the stage's snapshot/)
  then the decision: python notebooks/bench/bench_fingerprint_generator.py \\
    --config pretrain/configs/embed_fingerprint_fine_scratch.py \\
    --candidate /work/runs/prints_fine_scratch/model
"""

from pretrain.configs._continued import continued_on_views
from pretrain.configs.embed_fingerprint_fine import STRIDES
from pretrain.configs.embed_fingerprint_partial import get_config as partial
from pretrain.configs.embed_fingerprint_scale import get_config as scale
from pretrain.configs.embed_fingerprint_twins import BASE, COMMITTED, GENERATOR

__all__ = ["BASE", "COMMITTED", "GENERATOR", "get_config"]


def get_config() -> dict:
    twins = continued_on_views(partial(), "partial", "twins", GENERATOR, COMMITTED)
    prints = dict(twins["stages"]["twins"]["dataset_options"])
    config = scale()
    config["shared"]["model_options"] = {**config["shared"]["model_options"], "strides": STRIDES}
    contrastive = config["stages"]["contrastive"]
    contrastive["dataset_options"] = {**prints, "identities": 500}
    metric = config["stages"].pop("scale")
    metric["dataset_options"] = prints
    config["stages"]["fine_scratch"] = metric
    config["evaluation"] = twins["evaluation"]
    return config
