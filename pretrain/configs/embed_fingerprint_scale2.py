"""Fingerprint EmbedNet at scale, continued: ``embed_fingerprint_scale.py``'s CosFace stage resumed
from the committed backbone (its epoch 13, the rate never cut), to the rest of its 40-epoch bound.

Command (resumable: ``--resume`` continues the newest checkpoint):
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= POCKETFIT_CACHE=/work/main/runs/cache \\
    nice -n 19 python -m pretrain --config pretrain/configs/embed_fingerprint_scale2.py \\
    --workdir /work/runs/prints_scale2 --resume
  then python notebooks/bench/bench_embed.py --only fingerprint --fingerprint-config \\
    pretrain/configs/embed_fingerprint_scale2.py --fingerprint-workdir /work/runs/prints_scale2
Expected: the dev EER (synthetic identities 0-99) below the committed backbone's 4.96%; the
  original run's was still falling at its last epochs (6.18, 5.94, 5.63, 5.62, 4.96%) with the
  training error at 69%: the net underfits its 4,000 identities.
Time here: 500 steps a epoch, 500-1,100 s each on 2 free cores (hours in all; the plateau rule
  cuts the rate after 3 epochs without a new best dev EER and stops after 8).

What chose what: nothing new. The stage is the committed backbone's own (data, loss, rate,
schedule; dev = synthetic validation identities 0-99, never trained on), started from its
weights because the original run folder is gone: the optimizer's momentum starts at zero, the
margin warms up again over 300 steps and the CosFace classes start imprinted from the
backbone's own embeddings (``head_init="imprint"``), so the first steps refine, not undo, it.
"""

from pretrain.configs.embed_fingerprint_scale import get_config as scale

COMMITTED = "notebooks/results/models/embed_fingerprint"
EPOCHS_DONE = 13  # the committed backbone's scale epochs


def get_config() -> dict:
    config = scale()
    stage = config["stages"]["scale"]
    return {
        "shared": config["shared"],
        "stages": {
            "scale": {**stage, "init_from": COMMITTED, "epochs": stage["epochs"] - EPOCHS_DONE}
        },
        "evaluation": config["evaluation"],
    }
