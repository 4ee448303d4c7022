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
