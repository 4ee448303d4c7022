"""Fingerprint EmbedNet that keeps the ridges: ``embed_fingerprint_twins_fast.py``'s run (the
committed backbone continued on flow twins at 3e-3 for up to 12 epochs) with block 1's stride
moved to block 4, so blocks 1 and 2 work at 64 x 64 instead of 32 x 32. Registered 2026-12-06,
before any figure of it.

Why (dev, generator truth and the model's own geometry only): the committed backbone cannot tell
flow twins apart (genuine-vs-twin EER 43.5%, 50% = blind), and neither a continuation on twins
(43.1-43.3%) nor a minutiae head on block 4 (43.1-43.2%) taught it. Linear probes found minutiae
barely readable in any block (cell BCE 0.551 at block 1 against 0.562 from the pixels; the
extractor finds them from the same windows at precision 0.84). The network's geometry says why:
the 128 x 128 window is the print at 250 dpi, where the ridge period is 3.8-6.2 px; the stem's
stride halves it to 1.9-3.1 px, and block 1's stride to 0.95-1.55 px, below the two pixels a
period needs to be represented at all. From block 1 on, the ridges are aliased and ridge endings
and bifurcations have no pixels to live in. With strides (1, 1, 2, 2, 2, 1, 2, 1) blocks 1 and 2
see the ridges at 1.9-3.1 px (their 3 x 3 depthwise filters span 1-1.5 periods each), block 3
onwards work at the resolutions they have today, and the last map is 4 x 4 as before. The
parameters keep their shapes, so the committed weights start the run; the multiply-adds of the
embedding go from about 11 M to about 23 M (blocks 1-3 at four times their pixels).

Everything else is twins_fast's (data, rate, epochs, plateau schedule), so that run is the
control: the two compare the strides alone.

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on),
as ``_continued.py`` says (``<name>`` = fine):
- the checkpoint: the epoch with the lowest dev EER on the twin generator's prints;
- adoption: as ``embed_fingerprint_twins.py``, against the same bars, measured before those runs
  on the same committed backbone: <= 4.41% on twin prints, <= 4.18% on flowmix prints. The twin
  EER (genuine against twin pairs, :func:`pretrain.evaluation.twin_separation`) is reported as
  the yardstick of ridge detail; FVC is reported only.

Measured 2026-12-06 (paused, not ended by its rule): dev EER on the twin prints per epoch
6.45 6.21 6.00 6.11% (the committed backbone starts at 4.91%), training error 58 -> 48% (the
control, twins_fast: 30 -> 23%): moving the stride throws the committed weights far back, and
four epochs recovered little. The run was stopped during epoch 5 (14:18 UTC) to give the two
cores to ``embed_fingerprint_ridge.py``, which grows a full-resolution path beside the trunk
instead of changing it, and resumed at 15:44 UTC: epochs 5-8 read 5.95 **5.73** 5.86 6.14%
(training error 46 -> 41%) at 3e-3, the plateau rule not yet triggered. Its best epoch's twin EER
was 48.2% after epoch 3 (a scratch model of the checkpoint; committed 43.5%). The session ended
with the run in epoch 9; its checkpoints stay in ``/work/runs/prints_fine``, ``--resume``
would finish the registered 12 epochs.
Closed 2026-12-06 without the last four epochs (their cores went to
``embed_fingerprint_fine_scratch.py``, the same network from scratch): decided on the best of
epochs 1-8 (epoch 6; ``python -m pretrain snapshot --workdir /work/runs/prints_fine``), by the
rule above (notebooks/results/fingerprint_fine.json): 5.73% on the twin prints (bar 4.41),
4.64% on the flowmix ones (bar 4.18): **not adopted**. Twin EER 47.5% (committed 43.5%). FVC,
reported only: mean EER 11.56% (committed 11.91%); per set 7.86 / 11.11 / 7.14 / 17.78 / 13.93,
SFinGe 2.22; the paired bootstrap over fingers puts the difference at -2.75 to +2.79 points
(95%): FVC cannot tell the two apart.

Command: ``_continued.py``'s for the flow runs, ``<name>`` = fine (the twin prints are cached
from the twins run).
"""

from pretrain.configs._continued import continued_on_views
from pretrain.configs.embed_fingerprint_partial import get_config as partial
from pretrain.configs.embed_fingerprint_twins import BASE, COMMITTED, GENERATOR

__all__ = ["BASE", "COMMITTED", "GENERATOR", "STRIDES", "get_config"]

STRIDES = (1, 1, 2, 2, 2, 1, 2, 1)  # the committed backbone's: (2, 1, 2, 1, 2, 1, 2, 1)


def get_config() -> dict:
    config = continued_on_views(
        partial(), "partial", "fine", GENERATOR, COMMITTED, learning_rate=0.003, epochs=12
    )
    run = config["stages"]["fine"]
    run["model_options"] = {**config["shared"]["model_options"], "strides": STRIDES}
    return config
