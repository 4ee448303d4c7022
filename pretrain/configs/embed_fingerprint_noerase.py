"""The shipped (fingertip) print backbone continued without random erasing: does the augmentation
hold the fit back?

Registered 2026-12-08 01:30 UTC (notebooks/results/fingerprint_ablation.md, "Without erasing"),
before any figure of the run.

Why (dev only): at a tenth of the rate (``embed_fingerprint_anneal.py``) the backbone's top-1
error on its own augmented training prints stayed at 9.8-10.2% per epoch, while neither more
fingers nor a lower rate moved its dev EER. Either the network is too small for the task or the
task is made too hard by its augmentation. Random erasing (half the prints lose up to a quarter
of their area to a bright patch) is the augmentation that removes the most print, and since the
fingertip generator lifts 60% of its impressions off the sensor on one side, the prints already
lose area the way a sensor's do. This run drops the erasing, everything else kept.

The run: the shipped backbone continued on its own generator's prints (the fingertip generator,
the same 4,000 identities 300-4299 x 8 impressions, anchor windows) with the fingertip run's
recipe (rate 1e-3) and ``erase`` 0, for 5 epochs of 500 steps (a length set by the session's
time, not measured).

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on),
the flow runs' rule (``_continued.py``, ``<name>`` = noerase), fixed now:
- the checkpoint: the epoch with the lowest dev EER on the fingertip generator's prints;
- adoption: that dev EER at least 0.5 points below the shipped backbone's, and on ``BASE``'s
  prints (the flowmix generator) at most 0.5 above. The bars are the shipped backbone's figures,
  measured before the run (``bench_fingerprint_generator.py --config <this> --no-fvc``,
  notebooks/results/fingerprint_noerase.json).
FVC is reported for both, never used to choose.

The bars, measured before the run (notebooks/results/fingerprint_noerase.json): the shipped
backbone's dev EER is 2.46% on the fingertip generator's prints and 3.70% on the flowmix ones,
so the candidate needs <= 1.96% and <= 4.20%.

Measured 2026-12-08 (5 epochs, 17 min of training; the prints were cached): dev EER on the
fingertip prints per epoch 2.54 2.60 **2.44** 2.63 2.52%; epoch 3's is the candidate. The top-1
error on the training prints fell from 9.8-10.2% (with erasing) to 6.2-7.2%. The decision
(notebooks/results/fingerprint_noerase.json): 2.44% on the fingertip prints (bar 1.96) and 4.46%
on the flowmix ones (bar 4.20): **not adopted**. FVC, reported only: mean EER 10.32% (shipped
11.21%; paired 95% interval of the difference -1.54 to +0.67, so within the sets' noise), FNMR at
FMR 1% 23.71% (27.00%). The network fits its training prints better without erasing, and its dev
EER does not move: the augmentation is not what holds the dev figure.

Command: ``_continued.py``'s for the flow runs, ``<name>`` = noerase.
"""

from pretrain.configs.embed_fingerprint_fingertip import BASE, GENERATOR, on_its_prints

__all__ = ["BASE", "GENERATOR", "get_config"]  # what bench_fingerprint_generator.py reads


def get_config() -> dict:
    config = on_its_prints("noerase", learning_rate=0.001, epochs=5)
    options = config["stages"]["noerase"]["task_options"]
    options["augment"] = {**options["augment"], "erase": 0.0}
    return config
