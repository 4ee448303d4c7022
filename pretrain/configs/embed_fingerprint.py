"""Fingerprint EmbedNet: two-stage pretraining on synthetic prints only (SFinGe-style generator).

Command:
  python -m pretrain --config pretrain/configs/embed_fingerprint.py --workdir runs/embed_fingerprint
Expected: FILLED IN FROM THE BENCH.
Time here (2 CPU cores): FILLED IN FROM THE BENCH.

Data: identities are laid out as 100 validation, then 200 test (the protocol's held-out synthetic
people), then training identities, all from generator seed 0 and cached under runs/cache (the
first run generates ~34,000 prints, ~20 min on one core). Stage 1 reads 4,000 identities x 4
impressions without their labels (the "large unlabeled" set: 16,000 prints); stage 2 reads the
first 2,000 of them x 8 impressions with labels. Nothing real is used for training; the real FVC
sets are only evaluated (the ``fingerprint`` suite).

Stage 1 objective - contrastive (SimCLR, NT-Xent), not a denoising autoencoder: it shapes the
L2-normalised embedding itself, under the cosine score that verification and the phone use, and
needs no decoder (only the backbone is exported and trained on the phone). Its views differ by
what an acquisition changes - placement and rotation, elastic skin distortion, pressure (gamma),
smudge (blur), sensor noise, partial contact (an erased rectangle) - so the embedding learns to
ignore exactly that; a denoising autoencoder would spend its capacity on reconstructing ridge
pixels, identity-irrelevant detail included.

Stage 2: CosFace (additive cosine margin) over the 2,000 training identities, SGD with momentum
and weight decay, the learning rate cut on a plateau of the validation EER (100 held-out
identities), best-validation parameters kept.
"""

FINGERPRINT_AUGMENT = {
    "rotate": 20.0, "translate": 0.08, "scale": 0.08, "warp": 2.0, "gamma": 0.4, "blur": 1.0,
    "noise": 0.3, "erase": 0.5, "erase_area": 0.25, "fill": "bright",
}  # fmt: skip


def get_config() -> dict:
    data = {"val_identities": 100, "test_identities": 200, "held_out_impressions": 8, "seed": 0}
    return {
        "shared": {
            "model": "embednet",
            "model_options": {"feature_norm": True},
            "dataset": "synthetic_fingerprints",
            "val_size": 0,
            "batch_size": 64,
            "eval_batch_size": 200,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "plateau_factor": 0.1,
            "plateau_patience": 1,
            "early_stop_patience": 100,  # fixed budgets: the ablation compares equal steps
            "keep_checkpoints": 1,
        },
        "stages": {
            "contrastive": {
                "task": "contrastive",
                "dataset_options": {
                    **data,
                    "identities": 4000,
                    "impressions": 4,
                    "validate": False,
                },
                "epochs": 3,
                "learning_rate": 0.01,
                "task_options": {
                    "temperature": 0.2,
                    "projection": (256, 128),
                    "augment": FINGERPRINT_AUGMENT,
                },
            },
            "metric": {
                "task": "margin_softmax",
                "dataset_options": {**data, "identities": 2000, "impressions": 8},
                "epochs": 8,
                "learning_rate": 0.01,
                "task_options": {
                    "kind": "cosface",
                    "scale": 20.0,
                    "margin": 0.25,
                    "margin_warmup": 500,
                    "augment": FINGERPRINT_AUGMENT,
                },
            },
        },
        "evaluation": "fingerprint",
    }
