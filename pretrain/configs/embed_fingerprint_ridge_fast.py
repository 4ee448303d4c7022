"""Fingerprint EmbedNet grown by a ridge branch whose new parameters learn at a fresh run's
rate: ``embed_fingerprint_ridge.py``'s run with ``init_new_lr_scale`` 10 / 3 (the branch and its
gate at 1e-2, the rate the from-scratch recipe trains every parameter at; the trunk at the
continuation's 3e-3, as before). Registered 2026-12-06, before any figure of it.

Why (dev only): in the ridge run the fresh branch, at the continuation's rate, learnt less of
the minutiae maps than block 4's trained features already held (head loss 0.555 -> 0.535 a
cell, a constant scores 0.570; block 4's head went 0.494 -> 0.441), and the gate opened to a
mean of 0.003 a channel: the identity loss barely took the branch. Its dev figure (4.82% on the
twin prints, bar 4.41) therefore says little about whether full-resolution ridges help; it says
the branch was never trained. This run asks the same question with the branch trained at the
rate a fresh network gets. Nothing else changes, so the ridge run is its control.

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on),
as ``embed_fingerprint_ridge.py``:
- the checkpoint: the epoch with the lowest dev EER on the twin generator's prints;
- adoption: <= 4.41% on twin prints and <= 4.18% on flowmix prints (the bars of
  ``embed_fingerprint_twins.py``, measured on the committed backbone before those runs). The
  twin EER and the head's loss are reported as yardsticks of ridge detail; FVC is reported
  only.

Measured 2026-12-06 (10 epochs, 73 min; the plateau rule cut the rate after epochs 5 and 8,
and the run stopped 8 epochs after its best): dev EER on the twin prints per epoch 5.12
**4.79** 5.25 5.14 5.29 5.08 5.14 4.96 4.93 4.89% (the ridge run: 5.17 4.82 5.21 5.20 5.25 5.00
5.02 5.00 4.93 4.93). The head's loss a cell 0.553 0.544 0.534 0.523 0.509 0.497 0.495 0.493
0.492 0.491 (ridge 0.555 -> 0.535; a constant scores 0.570; block 4's head in the minutiae run
0.494 -> 0.441): at the fresh rate the branch learnt the maps about as far as block 4's features
start, and that did not move the dev EER. The gate of the chosen epoch (2) opened to a mean of
0.008 a channel (largest 0.048; ridge 0.003). The decision
(notebooks/results/fingerprint_ridge_fast.json): 4.79% on the twin prints (bar 4.41), 3.93% on
the flowmix ones (bar 4.18): **not adopted**. Twin EER 43.1% (committed 43.5%). FVC, reported
only: mean EER 11.11% (committed 11.91%; the paired bootstrap over fingers puts the difference
at -2.42 to +0.81 points); per set 9.64 / 10.36 / 8.93 / 15.56 / 11.07, FNMR at FMR 1% 27.14%;
SFinGe 6.67.

Command: ``_continued.py``'s for the flow runs, ``<name>`` = ridge_fast (the twin prints and
their minutiae maps are cached from the minutiae runs).
"""

from pretrain.configs.embed_fingerprint_ridge import BASE, COMMITTED, GENERATOR
from pretrain.configs.embed_fingerprint_ridge import get_config as ridge_config

__all__ = ["BASE", "COMMITTED", "GENERATOR", "get_config"]


def get_config() -> dict:
    config = ridge_config()
    run = config["stages"].pop("ridge")
    run["init_new_lr_scale"] = 10 / 3
    config["stages"]["ridge_fast"] = run
    return config
