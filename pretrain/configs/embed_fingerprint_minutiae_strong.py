"""Fingerprint EmbedNet with a stronger minutiae head pull: ``embed_fingerprint_minutiae.py``'s
run with ``minutiae_weight`` 20 instead of 5, for 6 epochs instead of up to 12. Registered
2026-12-06, before any figure of it (after the minutiae run's figures, which chose it).

Why (dev and training figures only): in the minutiae run the head's loss fell only from 0.49 to
0.44 a cell (a constant prediction scores 0.57 on the training maps, a perfect one 0.15), and at
weight 5 it was about a fifth of the loss (9.5-12.3 in all); the dev EER on twin prints stayed
at 4.88-5.29% and the twin EER at 43.2% (committed 43.5%). Whether a head that leads the gradient
makes block 4 read minutiae is the question: at 20 the head's term starts about as large as
CosFace's. 6 epochs: the minutiae run's dev EER and head loss moved little after the rate's
first cut (epoch 6).

What chooses what: as ``embed_fingerprint_minutiae.py`` (the checkpoint by the dev EER on twin
prints; adoption against the same bars, <= 4.41% on twin prints and <= 4.18% on flowmix ones;
the twin EER reported; FVC reported only).

Measured 2026-12-06 (6 epochs, 27 min; the plateau rule cut the rate to 3e-4 after epoch 5): dev
EER on the twin prints per epoch 5.32 5.07 5.54 5.32 5.21 **5.00**%; epoch 6's is the candidate.
The head's loss a cell 0.473 0.442 0.433 0.427 0.423 0.416: four times the pull, a little more
learnt. The decision (notebooks/results/fingerprint_minutiae_strong.json): 5.00% on the twin
prints (bar 4.41) and 3.93% on the flowmix ones (bar 4.18): **not adopted**. Twin EER 43.2%
(committed 43.5%). FVC, reported only: mean EER 11.37% (committed 11.91%); per set 10.00 / 8.57 /
11.11 / 16.07 / 11.11; FNMR at FMR 1% 26.3% (29.6%); SFinGe 6.67 (4.44).

Command: ``_continued.py``'s for the flow runs, ``<name>`` = minutiae_strong (prints and maps
cached from the minutiae run).
"""

from pretrain.configs.embed_fingerprint_minutiae import BASE, COMMITTED, GENERATOR, minutiae_run

__all__ = ["BASE", "COMMITTED", "GENERATOR", "get_config"]


def get_config() -> dict:
    return minutiae_run("minutiae_strong", 6, minutiae_weight=20.0)
