"""Fingerprint EmbedNet on flow twins at a higher rate: ``embed_fingerprint_twins.py``'s run
(the committed backbone continued on the flowmix generator's prints drawn as flow twins) at 3e-3
for 12 epochs instead of 1e-3 for 8. Registered 2026-12-06 09:00 UTC, before any figure of it.

Why (dev only): at 1e-3 the twins run barely learnt the twins. Its training error fell from 28%
to 25% in 8 epochs, and its dev EER on twin prints stayed at 4.75-5.35% against the committed
backbone's 4.91% (notebooks/results/fingerprint_twins.json, not adopted). Whether the twins help
is then untested: the run did not learn what they ask. A threefold rate and half again as many
epochs (the stage's plateau rule lowers the rate tenfold after 3 epochs without a dev gain)
are the smallest change that asks the question again; they were fixed from that run's training
error and dev curve alone.

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on),
as ``_continued.py`` says (``<name>`` = twins_fast):
- the checkpoint: the epoch with the lowest dev EER on the twin generator's prints;
- adoption: as ``embed_fingerprint_twins.py``, against the same bars, measured before that run
  on the same committed backbone: <= 4.41% on twin prints, <= 4.18% on flowmix prints.

Measured 2026-12-06 (10 epochs, 37 min; the plateau rule cut the rate to 3e-4 after epoch 5
and 3e-5 after 8, and the run ended at its floor): dev EER on the twin prints per epoch 5.21
**4.72** 5.25 5.21 5.24 4.95 5.11 5.07 4.91 4.86%; epoch 2's is the candidate. Training error
30 -> 23%. The decision (notebooks/results/fingerprint_twins_fast.json): 4.72% on the twin
prints (bar 4.41) and 3.84% on the flowmix ones (bar 4.18): **not adopted**. Its twin EER
(genuine against twin pairs alone, :func:`pretrain.evaluation.twin_separation`) is 43.3%
against the committed backbone's 43.5%: it did not learn to tell twins apart. FVC, reported
only: mean EER 11.33% (committed 11.91%); per set 9.64 / 10.71 / 10.00 / 15.56 / 10.71
(committed 9.64 / 10.36 / 10.36 / 17.78 / 11.43); FNMR at FMR 1% 27.00% (29.57%); SFinGe 6.67
(4.44).

Command: ``_continued.py``'s for the flow runs, ``<name>`` = twins_fast (the twin prints are
cached from the twins run).
"""

from pretrain.configs._continued import continued_on_views
from pretrain.configs.embed_fingerprint_partial import get_config as partial
from pretrain.configs.embed_fingerprint_twins import BASE, COMMITTED, GENERATOR

__all__ = ["BASE", "COMMITTED", "GENERATOR", "get_config"]


def get_config() -> dict:
    return continued_on_views(
        partial(), "partial", "twins_fast", GENERATOR, COMMITTED, learning_rate=0.003, epochs=12
    )
