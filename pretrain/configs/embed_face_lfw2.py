"""Face EmbedNet at scale, stage 3: embed_face_lfw.py's two stages, then CosFace over every
training person (the one-image LFW people too).

Command (resumable; the first two stages are embed_face_lfw.py's, so a workdir holding that
run's finished ``contrastive/`` and ``metric/`` folders skips them):
  mkdir -p /work/runs/face_lfw2 && cp -al /work/runs/face_lfw/{contrastive,metric} \\
    /work/runs/face_lfw2/
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= POCKETFIT_CACHE=/work/runs/cache \\
    python -m pretrain --config pretrain/configs/embed_face_lfw2.py \\
    --workdir /work/runs/face_lfw2 --resume
  then python notebooks/bench/bench_embed.py --only face --face-config \\
    pretrain/configs/embed_face_lfw2.py --face-workdir /work/runs/face_lfw2
Expected: see notebooks/results/embedding_face_variants.json (dev and ORL per variant).
Time here: 104 steps of 128 per epoch, 45-80 s each on 2 shared cores.

Stage 3 (``all_people``), chosen on the LFW dev people's EER: stage 2 trains on the 1,598
people with >= 2 images and had plateaued (dev EER 21.97%, three learning-rate cuts). This stage
adds the ~3,070 one-image training people as classes (4,667 identities, 13,309 images,
augmented): identities are what a margin loss separates, and the 1,000 background and 120 dev
people stay out (the roles are unchanged). Its classifier starts imprinted from the stage-2
model (``head_init="imprint"``), so a restart of the learning rate at 0.01 (a fifth of stage
2's first rate) refines the backbone instead of pulling it towards random class vectors.
"""

from pretrain.configs.embed_face_lfw import get_config as two_stages
from pretrain.embedding import FACE_AUGMENT


def get_config() -> dict:
    config = two_stages()
    config["stages"]["all_people"] = {
        "task": "margin_softmax",
        "epochs": 60,  # an upper bound: the dev EER's plateaus cut the rate, then stop
        "learning_rate": 0.01,
        "plateau_patience": 3,
        "early_stop_patience": 8,
        "dataset_options": {"input_size": (96, 80), "min_images": 1},
        "task_options": {
            "kind": "cosface",
            "scale": 30.0,
            "margin": 0.35,
            "head_init": "imprint",
            "augment": FACE_AUGMENT,
        },
    }
    return config
