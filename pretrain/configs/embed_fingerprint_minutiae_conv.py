"""Fingerprint EmbedNet with a convolutional minutiae head: ``embed_fingerprint_minutiae.py``'s
run (the head on block 4 at weight 5) with a head of its own capacity, a 3x3 convolution to 64
channels and a ReLU before the 1x1 output (``minutiae_hidden`` 64), for 6 epochs. Registered
2026-12-06, before any figure of it (after the two linear-head runs and the diagnostics, which
chose it).

Why (training prints and dev figures only; notebooks/results/fingerprint_ablation.md, "Minutiae
head"): the two linear heads learnt little (cell cross-entropy 0.441 and 0.416; a constant's 0.57)
and changed nothing on dev (twin EER 43.2%). Linear probes of the committed backbone find
minutiae weakly in every block (0.47-0.56), yet the hand-built extractor finds the truth maps'
cells from the same windows with precision 0.84 and recall 0.63: the targets are learnable, a
linear read of the backbone is not enough. A head that can compute (one convolution over the
block's 3 x 3 cells) asks block 4 for what a minutia detector needs rather than for minutiae
themselves. 6 epochs: the earlier runs moved little after the rate's first cut.

What chooses what: as ``embed_fingerprint_minutiae.py`` (the checkpoint by the dev EER on twin
prints; adoption against the same bars, <= 4.41% on twin prints and <= 4.18% on flowmix ones;
the twin EER reported; FVC reported only).

Measured 2026-12-06 (6 epochs, 27 min): dev EER on the twin prints per epoch 5.21 **4.73** 5.31
5.25 5.28 5.07%; epoch 2's is the candidate. Head loss 0.481 -> 0.416. The decision
(notebooks/results/fingerprint_minutiae_conv.json): 4.73% on the twin prints (bar 4.41) and
3.95% on the flowmix ones (bar 4.18): **not adopted**. Twin EER 43.1%. FVC, reported only: mean
EER 11.04%; per set 9.64 / 9.64 / 9.29 / 15.56 / 11.07.

Command: ``_continued.py``'s for the flow runs, ``<name>`` = minutiae_conv (prints and maps
cached from the minutiae run).
"""

from pretrain.configs.embed_fingerprint_minutiae import BASE, COMMITTED, GENERATOR, minutiae_run

__all__ = ["BASE", "COMMITTED", "GENERATOR", "get_config"]


def get_config() -> dict:
    return minutiae_run("minutiae_conv", 6, minutiae_hidden=64)
