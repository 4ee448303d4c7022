"""Fingerprint EmbedNet on windows registered on the learned anchor (registered 2026-12-05): the
committed (mixed) backbone continued on the same generator's prints, cut around the anchor that
:mod:`devices.localiser` points at instead of the symmetry filter's strongest core
(``crop="anchor"``, ``devices.localiser.ANCHOR_SPEC``; the device repeats it from the artifact's
spec).

Why (dev only): on the mixed generator's dev prints, 17.0% of genuine pairs are registered more
than 64 px apart on the finger, and they carry 10.71 of the committed backbone's 16.18 points of
FNMR at FMR 1% (``bench_fingerprint_ablation.py --registration-pairs``, notebooks/results/
fingerprint_ablation.md). The symmetry filter picks a different core-like point in one impression
(bent flow), has nothing to pick on an arch, and cannot point at a core out of contact; a network
taught the generator's anchor can do all three. The localiser's own bars, registered before it was
trained (dev identities 0-99; FVC not read): pairs > 64 px apart <= 10.0% on the mixed dev prints
and <= 3.6% on the default generator's, and the committed backbone's FNMR at FMR 1% on the mixed
dev prints, fed anchor windows, no higher than its 16.18%.

Run and decided as ``_continued.py`` says (``<name>`` = anchor); the committed backbone's row is
measured on its own (core) windows, the candidate's on anchor windows (each backbone by the spec
it carries). ``BASE`` is the period generator (the mixed run's other half, unbent), ``GENERATOR``
the mixed one, unchanged: what changes is the registration.
"""

from pretrain.configs._continued import continued
from pretrain.configs.embed_fingerprint_mixed import GENERATOR
from pretrain.configs.embed_fingerprint_partial import get_config as partial
from pretrain.configs.embed_fingerprint_period import GENERATOR as PERIOD

COMMITTED = "notebooks/results/models/embed_fingerprint"
BASE = ("period", PERIOD)  # the unbent half of the committed backbone's training prints


def get_config() -> dict:
    config = continued(partial(), "partial", "anchor", GENERATOR, COMMITTED)
    options = config["stages"]["anchor"]["dataset_options"]
    config["stages"]["anchor"]["dataset_options"] = {**options, "crop": "anchor"}
    return config
