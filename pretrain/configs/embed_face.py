"""Face EmbedNet: two-stage pretraining on ORL subjects s1-s20 (s21-s40 are never read).

Command:
  python -m pretrain --config pretrain/configs/embed_face.py --workdir runs/embed_face
Expected: FILLED IN FROM THE BENCH.
Time here (2 CPU cores): FILLED IN FROM THE BENCH.

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
decay, the plateau learning-rate cut (on the training error: 20 people leave none to hold out).
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
            "dataset": "orl_faces",
            "dataset_options": {"train_subjects": (1, 20), "repeat": 16},
            "val_size": 0,
            "batch_size": 64,
            "eval_batch_size": 200,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "plateau_factor": 0.1,
            "plateau_patience": 3,
            "early_stop_patience": 100,  # fixed budgets: the ablation compares equal steps
            "keep_checkpoints": 1,
        },
        "stages": {
            "contrastive": {
                "task": "contrastive",
                "epochs": 12,
                "learning_rate": 0.01,
                "task_options": {
                    "temperature": 0.2,
                    "projection": (256, 128),
                    "augment": CONTRASTIVE_AUGMENT,
                },
            },
            "metric": {
                "task": "margin_softmax",
                "epochs": 30,
                "learning_rate": 0.01,
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
