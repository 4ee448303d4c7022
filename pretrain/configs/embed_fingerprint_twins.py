"""Fingerprint EmbedNet on flow twins: the committed backbone continued, on its own anchor
windows, on the flowmix generator with every identity pair ``(2k, 2k + 1)`` drawn as flow twins
(``twin_share`` 1): the two fingers share fingertip, flow and ridge period and differ in ridge
detail (minutiae) only. Registered 2026-12-06 08:11 UTC (b06e2e1), before any figure of it.

Why (dev and unlabeled statistics only): the diagnosis in
notebooks/results/fingerprint_ablation.md ("Real prints share one direction", "The cone is the
loops' flow") found that real prints of different fingers share one embedding direction,
carried by their coarse ridge flow, and that synthetic fingers tell each other apart along it.
The generator's flows are far more varied than real fingers'; a backbone can separate its
identities by flow alone. Flow twins take that shortcut away: a pair differs only where real
fingers of the same flow differ. Each print alone is drawn as the flowmix generator draws it
(the even identity unchanged, the odd one another draw of the same flows), so what changes is
which fingers must be told apart, not what a print looks like.

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on),
as ``_continued.py`` says (``<name>`` = twins):
- the checkpoint: the epoch with the lowest dev EER on this generator's prints (50 twin pairs
  among the dev identities);
- adoption: the candidate's dev EER on this generator's prints at least 0.5 points below the
  committed backbone's, and on ``BASE``'s (the flowmix generator) at most 0.5 points above;
  both on anchor windows, the committed backbone's bars measured before the run
  (``bench_fingerprint_generator.py --config <this> --no-fvc``,
  notebooks/results/fingerprint_twins.json);
- the rate 1e-3 and 8 epochs, as the flowmix and steep runs; the share 1 because each print's
  own distribution does not change with it (nothing is forgotten by drawing other prints).

The bars (2026-12-06 08:13 UTC, before any epoch): the committed backbone's dev EER is 3.68% on
the flowmix generator's prints and 4.91% on this generator's (the 50 twin pairs are 1% of the
impostor pairs and cost it 1.2 points), so the candidate needs <= 4.41% on this generator's and
<= 4.18% on the flowmix one's.

Measured 2026-12-06 (8 epochs, 29 min of training; the prints took 14 min): dev EER on this
generator's prints per epoch 5.14 4.75 5.35 5.25 5.21 5.09 5.11 5.13%; epoch 2's is the
candidate. Training error stayed at 25-28% (the twins' classes). The decision
(notebooks/results/fingerprint_twins.json): 4.75% on this generator's prints (bar 4.41) and
3.86% on the flowmix ones (bar 4.18): **not adopted**. FVC, reported only: mean EER 11.86%
(committed 11.91%); per set 10.36 / 9.29 / 11.07 / 17.50 / 11.07 (committed 9.64 / 10.36 /
10.36 / 17.78 / 11.43); FNMR at FMR 1% 29.71% (29.57%).

Command: ``_continued.py``'s for the flow runs, ``<name>`` = twins.
"""

from pretrain.configs._continued import continued_on_views
from pretrain.configs.embed_fingerprint_flowmix import GENERATOR as FLOWMIX
from pretrain.configs.embed_fingerprint_partial import get_config as partial

COMMITTED = "notebooks/results/models/embed_fingerprint"
GENERATOR = {**FLOWMIX, "twin_share": 1.0}
BASE = ("flowmix", FLOWMIX)  # the generator the committed backbone was trained on


def get_config() -> dict:
    return continued_on_views(
        partial(), "partial", "twins", GENERATOR, COMMITTED, learning_rate=0.001, epochs=8
    )
