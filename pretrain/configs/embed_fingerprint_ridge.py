"""Fingerprint EmbedNet grown by a ridge branch: ``embed_fingerprint_minutiae.py``'s run (the
committed backbone continued on flow twins with their minutiae maps, at 3e-3 for up to 12
epochs, a minutiae head at weight 5) with a side path that reads the stem's output at full
resolution and joins the trunk after block 4 (:class:`pretrain.models.embednet.RidgeBranch`,
DeepPrint's second branch), the minutiae head reading that branch instead of block 4.
Registered 2026-12-06, before any figure of it.

Why (dev, generator truth and the model's own geometry only): the committed backbone cannot
tell flow twins apart (genuine-vs-twin EER 43.5%, 50% = blind); continuations on twins and
minutiae heads on block 4 did not teach it (43.1-43.3%). The 128 x 128 window is the print at
250 dpi (ridge period 3.8-6.2 px); after the stem's stride the period is 1.9-3.1 px, after block
1's 0.95-1.55 px: below two pixels a period, the ridges are aliased, and ridge endings have no
pixels to live in from block 1 on. ``embed_fingerprint_fine.py`` (registered before this, at
da08c25) moves block 1's stride to block 4 instead; its first epochs showed the committed
weights thrown far back by the change (dev EER 6.45, 6.21, 6.00% at epochs 1-3 against 4.91% at
the start, training error 58-50%). The branch leaves the trunk as it is: two separable blocks of
32 channels at the stem's 64 x 64 grid (ridges at 1.9-3.1 px), then two at stride 2 down to
block 4's 16 x 16 x 128, added to block 4's output through a per-channel gate that starts at
zero, so the run starts as the committed backbone. The minutiae head on the branch's output
(before the gate) asks it where the minutiae are; the identity loss, through the gate, asks what
they say. The embedding's multiply-adds go from about 11 M to about 22 M.

Settings fixed before the run: 32 channels (block 1's width, the narrowest the trunk uses at
that depth); the head linear and at weight 5, as the minutiae run, so that run is the control
(the two differ in the branch and where the head reads).

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on),
as ``_continued.py`` says (``<name>`` = ridge):
- the checkpoint: the epoch with the lowest dev EER on the twin generator's prints;
- adoption: as ``embed_fingerprint_twins.py``, against the same bars, measured before those runs
  on the same committed backbone: <= 4.41% on twin prints, <= 4.18% on flowmix prints. The twin
  EER (:func:`pretrain.evaluation.twin_separation`) is reported as the yardstick of ridge
  detail; FVC is reported only.

Measured 2026-12-06 (10 epochs, 75 min; the plateau rule cut the rate to 3e-4 after epoch 5
and 3e-5 after 8, and the run ended at its floor): dev EER on the twin prints per epoch 5.17
**4.82** 5.21 5.20 5.25 5.00 5.02 5.00 4.93 4.93%; epoch 2's is the candidate. The head's loss
a cell 0.555 0.549 0.546 0.543 0.539 0.537 0.536 0.536 0.535 0.535 (a constant scores 0.570;
the minutiae run's head on block 4 went 0.494 -> 0.441): the fresh branch, at the continuation's
rate, learnt less of the maps than block 4's trained features held. The gate opened to a mean
of 0.003 (largest 0.021) a channel: the identity loss barely took the branch. The decision
(notebooks/results/fingerprint_ridge.json): 4.82% on the twin prints (bar 4.41) and 4.11% on
the flowmix ones (bar 4.18): **not adopted**. Twin EER 42.9% (committed 43.5%). FVC, reported
only: mean EER 10.90% (committed 11.91%); per set 9.64 / 10.00 / 8.93 / 15.56 / 10.36
(committed 9.64 / 10.36 / 10.36 / 17.78 / 11.43); FNMR at FMR 1% 28.07% (29.57%); SFinGe 6.67
(4.44).

Command: ``_continued.py``'s for the flow runs, ``<name>`` = ridge (the twin prints and their
minutiae maps are cached from the minutiae runs).
"""

from pretrain.configs.embed_fingerprint_minutiae import BASE, COMMITTED, GENERATOR, minutiae_run

__all__ = ["BASE", "COMMITTED", "GENERATOR", "RIDGE", "get_config"]

RIDGE = {"ridge_width": 32, "ridge_into": 4}


def get_config() -> dict:
    config = minutiae_run("ridge", 12, minutiae_layer="ridge")
    run = config["stages"]["ridge"]
    run["model_options"] = {**config["shared"]["model_options"], **RIDGE}
    run["init_new"] = ["ridge", "ridge_gate"]
    return config
