"""Fingerprint EmbedNet with a minutiae head: ``embed_fingerprint_twins_fast.py``'s run (the
committed backbone continued on flow twins at 3e-3 for up to 12 epochs) plus a minutiae-map head
on block 4 trained beside CosFace on the generator's ground truth (DeepPrint-style multi-task
training, :mod:`pretrain.embedding.minutiae_head`, maps from :mod:`pretrain.data.minutiae_maps`).
Registered 2026-12-06, before any figure of it.

Why (dev and generator truth only): the committed backbone cannot tell flow twins apart (two
fingers with the same fingertip, flow and ridge period, different minutiae: genuine-vs-twin EER
43.5%, 50% = blind), and continuing it on twins at 1e-3 or 3e-3 did not teach it (43.1 / 43.3%;
notebooks/results/fingerprint_ablation.md, "Flow twins"). The identity loss alone never asks the
inner features where the minutiae are; the head does, on every training print, from the master's
minutiae mapped into the print's window. Only the head is new: the data, rate, epochs and
schedule are twins_fast's, so the two runs compare the head alone.

Settings, fixed before the run from the training data only:
- block 4 (16 x 16 cells of 16 px at 500 dpi, about two ridge periods; 128 channels): the
  middle of the network, so four blocks remain to turn minutiae into identity;
- ``minutiae_weight`` 5: twins_fast's CosFace training loss was 7.1-9.9 per epoch (its
  metrics.jsonl), the head's binary cross-entropy at its prior is about 0.25 a cell; 5 starts the
  head at about a sixth of the loss: a share of the gradient without letting it lead.

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on),
as ``_continued.py`` says (``<name>`` = minutiae):
- the checkpoint: the epoch with the lowest dev EER on the twin generator's prints;
- adoption: as ``embed_fingerprint_twins.py``, against the same bars, measured before those runs
  on the same committed backbone: <= 4.41% on twin prints, <= 4.18% on flowmix prints. The twin
  EER (genuine against twin pairs, :func:`pretrain.evaluation.twin_separation`) is reported as
  the yardstick of ridge detail; FVC is reported only.

Measured 2026-12-06 (the maps took 23 min on 2 cores; then 10 epochs, 46 min; the plateau rule
cut the rate to 3e-4 after epoch 5 and 3e-5 after 8, and the run ended at its floor): dev EER on
the twin prints per epoch 5.18 **4.88** 5.29 5.13 5.05 5.04 5.00 5.07 5.08 5.07%; epoch 2's is
the candidate. The head's loss a cell 0.494 0.470 0.459 0.452 0.448 0.443 0.443 0.442 0.442 0.441
(a constant prediction scores 0.570 on the training maps, a perfect one 0.148): block 4 learnt
a little of where the minutiae are. The decision (notebooks/results/fingerprint_minutiae.json):
4.88% on the twin prints (bar 4.41) and 4.04% on the flowmix ones (bar 4.18): **not adopted**.
Twin EER 43.2% (committed 43.5%): the twins are still told apart by nothing but noise. FVC,
reported only: mean EER 10.90% (committed 11.91%, twins_fast 11.33%); per set 9.29 / 9.64 /
9.64 / 15.56 / 10.36 (committed 9.64 / 10.36 / 10.36 / 17.78 / 11.43); FNMR at FMR 1% 26.1%
(29.6%); SFinGe 6.43 (4.44).

Command: ``_continued.py``'s for the flow runs, ``<name>`` = minutiae (the twin prints are
cached from the twins run; the minutiae maps are drawn once, about 20 minutes on 2 cores).
"""

from pretrain.configs._continued import continued_on_views
from pretrain.configs.embed_fingerprint_partial import get_config as partial
from pretrain.configs.embed_fingerprint_twins import BASE, COMMITTED, GENERATOR

__all__ = ["BASE", "COMMITTED", "GENERATOR", "MINUTIAE", "get_config", "minutiae_run"]

MINUTIAE = {"minutiae_weight": 5.0, "minutiae_block": 4}


def minutiae_run(name: str, epochs: int, **head: object) -> dict:
    """The committed backbone continued on the twin prints with their minutiae maps and a
    minutiae head (:data:`MINUTIAE`, ``head`` replacing its options), at 3e-3 for ``epochs``:
    the shape of the minutiae runs."""
    config = continued_on_views(
        partial(), "partial", name, GENERATOR, COMMITTED, learning_rate=0.003, epochs=epochs
    )
    run = config["stages"][name]
    run["dataset_options"] = {**run["dataset_options"], "minutiae_maps": True}
    run["task_options"] = {**run["task_options"], **MINUTIAE, **head}
    return config


def get_config() -> dict:
    return minutiae_run("minutiae", 12)
