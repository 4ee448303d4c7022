"""Face EmbedNet: two-stage pretraining on ORL subjects s1-s20 (s21-s40 are never read).

Command:
  python -m pretrain --config pretrain/configs/embed_face.py --workdir runs/embed_face
Expected: (``bench_embed.py --only face``, 2026-11-25) s21-s40, images 1-5 enroll, 6-10 probe:
  1/3/5-shot 71 / 75 / 79%, EER 13.0%: short of the issue's 97% 5-shot, and below the HOG
  baseline (60 / 75 / 85%, EER 26.8%) and LBP (67 / 79 / 83%, EER 18.1%) at 5 shots, better at 1
  shot and in EER. Stage 2 alone for the same 1,500 steps: 73 / 74 / 80%, EER 12.2%.
  Tried (same protocol; ``--set`` on this file unless said): the first settings (stage 1: 6
  epochs, lr 0.01, temperature 0.2; stage 2: lr 0.01) 63 / 65 / 73% (stage 2 alone 76 / 74 /
  75%); those plus weight_decay=5e-3, margin 0.35, scale 24: 64 / 64 / 69%; weight
  standardisation with lr 0.05: stage 1 did not learn; stage 1 as now with stage 2 at lr 0.01:
  70 / 70 / 76% (stage 1 alone: 68 / 65 / 73%). Raw pixels score 53 / 65 / 78%. With 20 training
  people the embedding overfits them (training error ~1%); more (unlabeled) faces are the lever.
Time here (2 CPU cores shared with other jobs): stage 1 230 s (600 steps), stage 2 197 s (900
  steps), the stage-2-alone ablation 196 s; the whole face bench 626 s.

Data: the 200 ORL faces of s1-s20 (64x64, ``devices.preprocess.FACE_SPEC``), each held 16 times
per epoch under different augmentations. The unlabeled data of stage 1 is those same 200 faces
without their labels: there is no other face data here, so "large unlabeled" is honestly small.

Stage 1 objective - contrastive (SimCLR, NT-Xent), not a denoising autoencoder: it shapes the
L2-normalised embedding under the cosine score that verification and the phone use, needs no
decoder, and with 200 faces instance discrimination under strong augmentation (pose-like
rotation, scale and shift, mirror, lighting gamma, blur, noise, occlusion) is the richer signal:
it must tell every image from 199 others, where a reconstruction loss would spend the small net
on pixels. Copies of one face in a batch are not negatives (``same_source``).

Stage 2: CosFace over the 20 identities with a margin warm-up, SGD with momentum and weight
decay at a low learning rate (0.002: it fine-tunes stage 1's features; 0.01 gave 76% 5-shot),
the plateau learning-rate cut (on the training error: 20 people leave none to hold out).
"""

FACE_AUGMENT = {
    "rotate": 10.0, "translate": 0.06, "scale": 0.1, "flip": True, "gamma": 0.4, "blur": 1.0,
    "noise": 0.2, "erase": 0.5, "erase_area": 0.2,
}  # fmt: skip
CONTRASTIVE_AUGMENT = {
    "rotate": 15.0, "translate": 0.1, "scale": 0.15, "flip": True, "gamma": 0.5, "blur": 1.0,
    "noise": 0.3, "erase": 0.5, "erase_area": 0.25,
}  # fmt: skip


def get_config() -> dict:
    return {
        "shared": {
            "model": "embednet",
            "model_options": {"feature_norm": True},
            "dataset": "orl_faces",
            "dataset_options": {"train_subjects": (1, 20), "repeat": 16},
            "val_size": 0,
            "batch_size": 64,
            "eval_batch_size": 200,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "plateau_factor": 0.1,
            "plateau_patience": 2,
            "early_stop_patience": 100,  # fixed budgets: the ablation compares equal steps
            "keep_checkpoints": 1,
        },
        "stages": {
            "contrastive": {
                "task": "contrastive",
                "epochs": 12,
                "learning_rate": 0.03,
                "task_options": {
                    "temperature": 0.1,
                    "projection": (256, 128),
                    "augment": CONTRASTIVE_AUGMENT,
                },
            },
            "metric": {
                "task": "margin_softmax",
                "epochs": 18,
                "learning_rate": 0.002,  # fine-tunes the contrastive features, not overwrites
                "task_options": {
                    "kind": "cosface",
                    "scale": 16.0,
                    "margin": 0.2,
                    "margin_warmup": 300,
                    "augment": FACE_AUGMENT,
                },
            },
        },
        "evaluation": "face",
    }
