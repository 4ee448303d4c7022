"""Fingerprint EmbedNet on prints whose loops and whorls flow as SFinGe's do: the committed
backbone continued, on its own anchor windows, on the mixed generator with ``flow="sfinge"``
(each loop's and whorl's singular points and Vizcaya-Gerhardt corrections drawn from those
fitted to SFinGe's prints, :mod:`pretrain.data.fingerprint.flow`). Registered 2026-12-06, before
the run.

Why: the committed backbone puts every real print in a narrow cone (the mean of their unit
embeddings has norm 0.56-0.71 per FVC set; the synthetic dev prints' 0.08), and SFinGe's prints
sit in it too. Diagnosed on FVC (read as a diagnosis, notebooks/results/fingerprint_ablation.md,
"The cone is the loops' flow"): our own ridge growth on a real print's smoothed orientation field
lands where the real print does (projection on the cone's axis 0.67 against 0.66), whatever the
period (0.67) or smoothing (0.63 at 3 blocks); the zero-pole field at the print's own singular
points does not (0.14). Loops and whorls drawn with corrections fitted to SFinGe's move towards
the cone (the committed backbone's projection, dev-style prints 5000-5099 x 4: 0.00 -> 0.22 on
this generator's, -0.00 -> 0.36 on clean default ones; loops alone 0.18 / 0.29). A backbone that
learns to tell such prints apart should stop collapsing them. Only DB4 (SFinGe's output) was
fitted; the five sensor sets were not read for the table.

A first start with loops only (bars 2.96 / 4.29%) was stopped while its prints were still being
drawn, before any epoch, to add the whorls (28% of prints); the bars below are re-measured.

The bars (2026-12-06, before the run): the committed backbone's dev EER is 2.96% on the mixed
generator's prints and 7.39% on this generator's, so the candidate needs <= 6.89% on this
generator's and <= 3.46% on the mixed one's. The committed backbone tells these flows apart far
worse than its own: the collapse the cone shows on real prints, seen on synthetic ones.

What chooses what (registered before the run; dev = synthetic validation identities 0-99 x 8,
seed 0, never trained on), as ``_continued.py`` says (``<name>`` = flow):
- the checkpoint: the epoch with the lowest dev EER on this generator's prints;
- adoption: the candidate's dev EER on this generator's prints at least 0.5 points below the
  committed backbone's, and on ``BASE``'s (the mixed generator, the committed backbone's own)
  at most 0.5 points above; both measured on anchor windows, the committed backbone's bars
  measured before the run (``bench_fingerprint_generator.py --config <this> --no-fvc``,
  notebooks/results/fingerprint_flow.json);
- the rate 1e-3 (and 12 epochs, the plateau rule of the recipe): the anchor run's restart, where
  1e-2 undid the committed backbone's gains (``embed_fingerprint_anchor.py``). FVC is reported
  for both, never used to choose.

Command: ``_continued.py``'s for the flow runs, ``<name>`` = flow.
"""

from pretrain.configs._continued import continued_on_views
from pretrain.configs.embed_fingerprint_mixed import GENERATOR as MIXED
from pretrain.configs.embed_fingerprint_partial import get_config as partial

COMMITTED = "notebooks/results/models/embed_fingerprint"
GENERATOR = {**MIXED, "flow": "sfinge"}
BASE = ("mixed", MIXED)  # the generator the committed backbone was trained on


def get_config() -> dict:
    return continued_on_views(
        partial(), "partial", "flow", GENERATOR, COMMITTED, learning_rate=0.001, epochs=12
    )
