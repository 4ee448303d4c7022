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
