"""The mixed generator's prints on fingers as large as the FVC sensors see (a localiser's second
training source; not a backbone config: it defines ``GENERATOR`` alone).

Why: ``data stats``' ``foreground_px`` puts the five FVC sensor sets' prints at a median 81k px of
finger (75k, 81k, 142k, 74k, 102k), the generator's fingertip at 57k even in a 400x400
impression: the shipped localiser had never seen a print as large as the real ones.
``finger_scale`` 1.25 matches 81k in 448x448 impressions (1.2: 79k, 1.3: 84k, 1.4: 92k; 10
identities x 8, chosen on ``foreground_px`` alone); the master canvas grows to hold the finger.

The localiser trained on these prints alone lost on the standard ones (not adopted); trained on
both (``python -m pretrain localiser --generator-config pretrain/configs/embed_fingerprint_mixed.py
--generator-config pretrain/configs/localiser_large_fingers.py --identities 1000 --identities 600
--epochs 10``) it met both bars registered before it trained (dev only; 2026-12-05,
notebooks/results/fingerprint_ablation.md) and ships as ``devices/localiser.npz``.
"""

from pretrain.configs.embed_fingerprint_mixed import GENERATOR as MIXED

GENERATOR = {
    **MIXED,
    "master_shape": [512, 432],
    "impression_shape": [448, 448],
    "finger_scale": 1.25,
}
