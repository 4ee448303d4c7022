"""Fingerprint EmbedNet: two-stage pretraining on synthetic prints only (SFinGe-style generator).

Command:
  python -m pretrain --config pretrain/configs/embed_fingerprint.py --workdir runs/embed_fingerprint
Expected: (``make bench-embed``, 2026-11-25) held-out synthetic identities (200 x 8): EER 21.8%,
  FRR at FAR 1e-2 / 1e-3 / 2e-5 = 92.0 / 98.8 / 99.9%, 1/3/5-shot 6.7 / 9.5 / 11.0%; real FVC B
  sets (50 fingers): EER 31.7%, 1/3/5-shot 11.3 / 16.7 / 20.0%. Baselines on the same splits:
  synthetic HOG EER 20.5% (5-shot 27.5%), FVC LBP EER 26.3% (5-shot 57.3%): this budget does not
  beat them. Stage 2 alone for the same 625 steps: synthetic EER 41.2%, FVC EER 35.2%.
Time here (2 CPU cores shared with other sessions' jobs, load average 6-12): stage 1 888 s (125 steps), stage 2
  780 s (500 steps), the stage-2-alone ablation 518 s; the print cache (18,400 prints) took
  ~27 min in two processes under that load, once.

How each setting was chosen: notebooks/results/tuning_notes.md.
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
                    "identities": 2000,
                    "impressions": 4,
                    "validate": False,
                },
                "epochs": 1,
                "learning_rate": 0.01,
                "task_options": {
                    "temperature": 0.2,
                    "projection": (256, 128),
                    "augment": FINGERPRINT_AUGMENT,
                },
            },
            "metric": {
                "task": "margin_softmax",
                "dataset_options": {**data, "identities": 1000, "impressions": 8},
                "epochs": 4,
                "learning_rate": 0.01,
                "task_options": {
                    "kind": "cosface",
                    "scale": 20.0,
                    "margin": 0.25,
                    "margin_warmup": 150,
                    "augment": FINGERPRINT_AUGMENT,
                },
            },
        },
        "evaluation": "fingerprint",
    }
