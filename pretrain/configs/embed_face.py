"""Face EmbedNet: two-stage pretraining on ORL subjects s1-s20 (s21-s40 are never read).

Command:
  python -m pretrain --config pretrain/configs/embed_face.py --workdir runs/embed_face
Expected: (``bench_embed.py --only face``, 2026-11-25) s21-s40, images 1-5 enroll, 6-10 probe:
  1/3/5-shot 86 / 89 / 84%, EER 10.9% (FRR 27.0% at FAR 1e-2, 51.4% at 1e-3); on the same
  78x64 inputs the LBP baseline 76 / 84 / 89%, EER 15.0%, HOG 62 / 79 / 87%, EER 24.7%. Stage 2
  alone for the same 1,500 steps: 76 / 84 / 85%, EER 12.3%.
  The issue's 97% 5-shot is not reached (see the ceilings below: no method measured here
  reaches it on this split with class-mean templates).

Input: the whole 92x112 ORL face area-resized to 78x64 (``dataset_options`` ``input_size`` and
``crop``; the saved model carries that preprocessing spec), not ``FACE_SPEC``'s centre 92x92 square
at 64x64, which cuts 10 rows of forehead and chin. Ceilings measured first on this exact split
(numpy; 1/3/5-shot class mean, then 5-shot 1-NN, EER; PCA and Fisherfaces fit on s1-s20 only,
mirrored faces added to their fit):
  raw pixels, centre square 64x64:  53 / 65 / 78%, 1-NN 83%, EER 19.7%
  raw pixels, whole face 78x64:     68 / 78 / 86%, 1-NN 94%, EER 15.4%  (16x20: 70 / 79 / 87%, 95%)
  PCA-100, whole face 78x64:        73 / 82 / 86%, 1-NN 92%, EER 14.6%
  Fisherfaces (PCA-80 + LDA), whole: 83 / 89 / 85%, 1-NN 93%, EER 12.8%  (square: 66 / 78 / 77%)
  flip-averaged features: no gain (raw whole face 73 / 78 / 83%).
So the square crop loses identity, resolution beyond 16x20 adds little for pixels, and the
class-mean protocol costs ~8 points against 1-NN: enrollment images 1-5 and probes 6-10 differ
in pose, and the errors spread over many subjects (no single person to blame).
Net runs (all whole face unless said; 100 probes, so one probe is 1 point and +-4 points is
noise): the previous config at 64x64 square 71 / 75 / 79%, EER 13.0% (stage 2 alone 73 / 74 /
80%); whole face at 64x52: 73 / 74 / 81%, EER 12.9% (stage 2 for 300 instead of 900 steps
75 / 78 / 78%; stage 2 adding NT-Xent on two views, ``contrastive_weight`` 1: 70 / 72 / 76%);
whole face at 78x64 (this config): 86 / 89 / 84%, EER 10.9%; wider net (stem 32, widths 48 ..
256, 198k parameters): 75 / 80 / 84%, EER 11.8%; 64-d embedding, weight decay 1e-3 and stage 1's
stronger augmentation in stage 2: 70 / 73 / 80%, EER 12.3%; whole face at 96x78: 74 / 77 / 79%,
EER 13.1%. Resolution is not monotonic (64x52 < 78x64 > 96x78): run-to-run variation is
several points, and 78x64's lead over the others may be partly luck (no second seed measured).
Pooled block-7 features instead of the embedding: 74 / 85 / 95% at 64x52 but 79 / 88 / 85% at
78x64, no consistent gain; flip-averaging the embedding at test time moved the stage-2 models'
5-shot by -1..+5 points (0 for this config): not adopted (the export would need a REVERSE_V2).
Time here (2 CPU cores shared with 3-4 other jobs): stage 1 458 s (600 steps), stage 2 356 s
  (900 steps), the stage-2-alone ablation 482 s; the whole face bench 1,301 s.

Data: the 200 ORL faces of s1-s20, each held 16 times per epoch under different augmentations.
The unlabeled data of stage 1 is those same 200 faces without their labels: there is no other
face data here, so "large unlabeled" is honestly small.

Stage 1 objective - contrastive (SimCLR, NT-Xent), not a denoising autoencoder: it shapes the
L2-normalised embedding under the cosine score that verification and the phone use, needs no
decoder, and with 200 faces instance discrimination under strong augmentation (pose-like
rotation, scale and shift, mirror, lighting gamma, blur, noise, occlusion) is the richer signal:
it must tell every image from 199 others, where a reconstruction loss would spend the small net
on pixels. Copies of one face in a batch are not negatives (``same_source``).

Stage 2: CosFace over the 20 identities with a margin warm-up, SGD with momentum and weight
decay at a low learning rate (0.002: it fine-tunes stage 1's features; 0.01 gave 76% 5-shot on
the square crop), the plateau learning-rate cut (on the training error: 20 people leave none to
hold out).
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
            # The whole face, not FACE_SPEC's centre square (see the ceilings above).
            "dataset_options": {
                "train_subjects": (1, 20),
                "repeat": 16,
                "input_size": (78, 64),
                "crop": "none",
            },
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
