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

Data: identities are laid out as 100 validation, then 200 test (the protocol's held-out synthetic
people), then training identities, all from generator seed 0 and cached under runs/cache (the
first run generates 2,300 identities x 8 stored impressions = 18,400 prints, one process per
core; ``POCKETFIT_WORKERS`` sets the count). Stage 1 reads 2,000 identities x 4 impressions without
their labels (the larger unlabeled set: 8,000 prints of twice as many people); stage 2 reads the
first 1,000 of them x 8 impressions with labels. Nothing real is used for training; the real FVC
sets are only evaluated (the ``fingerprint`` suite).

Shrunk to fit the hour bench-embed may take on a shared 2-core machine (a 128x128 contrastive
step of 2 x 64 views took 4-7 s there): the first design read 4,000 identities in stage 1
(3 epochs) and 2,000 in stage 2 (8 epochs), about ten times the compute. At this budget the
margin softmax over 1,000 identities has not started to fit (training error 99.8% after 500
steps; from a random start, stage 2 alone barely moves): the embedding is essentially stage 1's.
More steps (the first design) are the first thing to try.

Stage 1 objective - contrastive (SimCLR, NT-Xent), not a denoising autoencoder: it shapes the
L2-normalised embedding itself, under the cosine score that verification and the phone use, and
needs no decoder (only the backbone is exported and trained on the phone). Its views differ by
what an acquisition changes - placement and rotation, elastic skin distortion, pressure (gamma),
smudge (blur), sensor noise, partial contact (an erased rectangle) - so the embedding learns to
ignore exactly that; a denoising autoencoder would spend its capacity on reconstructing ridge
pixels, identity-irrelevant detail included.

Stage 2: CosFace (additive cosine margin) over the 1,000 training identities, SGD with momentum
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
