"""The shipped (fingertip) print backbone continued at a tenth of its rate: does annealing help?

Registered 2026-12-07 23:50 UTC (notebooks/results/fingerprint_ablation.md, "A lower rate"),
before any figure of the run.

Why (dev only): every continued run since the placement run trained at a fixed 1e-3. Their
plateau controller (patience 3 on the dev EER) never cut the rate. The fingertip run's dev EER
fell at 7 of its 8 epochs (2.82 2.71 2.64 2.93 2.64 2.55 2.46 2.50%), so all 8 ran at 1e-3, and
so did fingertip8k's 6. The dev EER has wandered by about 0.1-0.3 points from epoch to epoch at
that rate; SGD with momentum at a fixed rate stops at the noise floor the rate sets, and a cut is
the usual next step of any schedule. Two fresh runs of other sizes were tried (scale, fingers);
the schedule was not.

The run: the shipped backbone, continued on its own generator's prints (the fingertip
generator, the same 4,000 identities 300-4299 x 8 impressions, anchor windows), the same recipe
with the rate at 1e-4 (``learning_rate``) for 5 epochs of 500 steps. The epochs are set by the
session's time, not measured.

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on),
the flow runs' rule (``_continued.py``, ``<name>`` = anneal), fixed now:
- the checkpoint: the epoch with the lowest dev EER on the fingertip generator's prints;
- adoption: that dev EER at least 0.5 points below the shipped backbone's, and on ``BASE``'s
  prints (the flowmix generator) at most 0.5 above. The bars are the shipped backbone's figures,
  measured before the run (``bench_fingerprint_generator.py --config <this> --no-fvc``,
  notebooks/results/fingerprint_anneal.json).
FVC is reported for both, never used to choose.

The bars, measured before the run (notebooks/results/fingerprint_anneal.json): the shipped
backbone's dev EER is 2.46% on the fingertip generator's prints and 3.70% on the flowmix ones,
so the candidate needs <= 1.96% and <= 4.20%.

Measured 2026-12-08 (5 epochs, 18 min of training after 21 min drawing the 32,000 prints): dev
EER on the fingertip prints per epoch 2.46 2.50 **2.45** 2.57 2.58%; epoch 3's is the candidate.
The decision (notebooks/results/fingerprint_anneal.json): 2.45% on the fingertip prints (bar
1.96) and 4.00% on the flowmix ones (bar 4.20): **not adopted**. FVC, reported only: mean EER
11.07% (shipped 11.21%; paired 95% interval of the difference -0.57 to +0.64). A tenth of the
rate moved the dev EER by 0.02 points: the schedule is not what holds the backbone back.

Command: ``_continued.py``'s for the flow runs, ``<name>`` = anneal.
"""

from pretrain.configs.embed_fingerprint_fingertip import BASE, GENERATOR, on_its_prints

__all__ = ["BASE", "GENERATOR", "get_config"]  # what bench_fingerprint_generator.py reads


def get_config() -> dict:
    return on_its_prints("anneal", learning_rate=0.0001, epochs=5)
