"""Face EmbedNet widened to 1.0M parameters at 112x96: two stages on LFW + Extended Yale B, with
weight standardisation and a running standardisation after ``embed``; ORL is unseen.

Command (hours on 2 cores; resumable, checkpoints every epoch):
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= POCKETFIT_CACHE=/work/runs/cache \\
    setsid nohup nice -n 19 python -m pretrain --config pretrain/configs/embed_face_wide.py \\
    --workdir /work/runs/face5 > /work/runs/face5.log 2>&1 &
  (add --resume to continue after an interruption), then
  python notebooks/bench/bench_embed.py --only face --face-checkpoint --face-config \\
    pretrain/configs/embed_face_wide.py --face-workdir /work/runs/face5
Expected (measured): the committed face backbone since 2026-12-03 (``models/embed_face_lfw``,
  written by bench-embed from /work/runs/face5): LFW dev EER 16.20% (embed_face_lfw.py's
  EmbedNet: 21.97%), dev 5-shot 63.2% (45.7%); reported on ORL (never read in training or
  choice): 5-shot 98.25% (97.25%), EER 5.11% (7.56%); flip-averaged as below 98.80%, 4.72%:
  issue 14's EER target (<= 3%) is still not met.
  The run: started 2026-12-02 06:42 UTC (nice 19, ~10 s a step), that folder lost; started again
  2026-12-03 10:26 UTC on /work/runs/face5 and resumed across a session end (epoch 24) on 2
  otherwise mostly free cores, ~1 s a step, 30-60 s a CosFace epoch. Contrastive dev EER 48.4,
  45.2, 44.4, 43.0% (epochs 1-4); CosFace at rate 0.05: 47.2 (epoch 1), 31.4 (10), 26.1 (20),
  20.3 (34), 17.5-19.5 (40-55, the plateau); rate 0.005 from epoch 56: 16.7, 16.5, 16.4, 16.6,
  16.3, 16.4, 16.2 (epoch 62, the kept model); 0.0005 from 67 and 5e-05 from 71: 16.4; early
  stop after epoch 74 (12 epochs without a better dev EER). Checkpoint scored at epoch 34
  (embedding_face_trend.json): ORL 5-shot 94.65%, EER 7.28%. The CosFace stage's 74 epochs
  took 49 minutes of epoch time.
Test time (``evaluation_options``), chosen on the dev people among the variants of
  ``bench_embed.py --face-variants /work/runs/face5/model --face-config <this file>``
  (notebooks/results/embedding_face_variants.json, its second record): flip averaging, dev EER
  16.20 -> 15.46%, 5-shot 63.2 -> 66.4% (reported: ORL EER 5.11 -> 4.72%, 5-shot 98.25 ->
  98.80%). Worse on dev: the pooled features before the projection (17.19%, flipped 16.72%),
  whitening fitted on the background or training people (22.25, 21.29%); AS-norm against the
  background people 15.51% (no better than flipping alone). The int8 flip-averaged LiteRT
  ``embed`` is 0.32 ms an image on one thread (issue 14's budget: 5 ms), its cosine with the
  float model >= 0.9988 on 200 dev faces.
Test-time views (``evaluation_options.test_views``, :mod:`devices.views`), chosen on the dev
  people after the flip (2026-12-04; measured again by ``notebooks/bench/bench_face_views.py``
  into ``face_views_dev.json``, float model, flip averaging in every row): flip alone 15.46%
  dev EER, + four 3-pixel shifts 14.67%, + a 1.08 zoom 14.90%, both 14.61% (5-shot 66.4 ->
  69.3%); an earlier check with scipy's shift and zoom (2026-12-04, not kept) also ranked 2, 4,
  6 px shifts and 8 shifts of 4 px below 3 px. 12 embeddings a capture. ORL read once, after
  the choice. Measured after it, not adopted: + four diagonal 3-pixel shifts 14.41%, + a 1.16
  zoom 14.40%, both 14.29% (22 views; the manifest's views cannot describe them).
  A fine-tuning of this backbone with stronger geometry augmentation (rotation 12, translation
  0.1, scale 0.2; rate 0.005, imprinted head, 10 epochs, 2026-12-04) did not beat it on dev:
  single-view EER 16.27-16.67% against its 16.20%.
Time here (2 cores shared, load average 13-14, normal priority): the contrastive stage 5.3 s
  a step of 128 pairs, 9-10 min an epoch (103 steps); CosFace 4.4-4.7 s a step of 128, 6 min
  an epoch (80 steps). At nice 19 beside other jobs 1-2x that: 4 + 40-60 epochs, 5-12 h.

Why this net and not the MobileFaceNet (``embed_face_mfn2.py``): a third of the arithmetic
for 1.7x the parameters (219 vs 613 MFLOP per image forward and backward at 112x96, XLA's
count), and much cheaper steps here (CPU per image of a CosFace step,
``/work/runs/face5_quick/speed.py``: 8.5 ms at batch 64 vs the MobileFaceNet's 128 ms at
batch 32). The MobileFaceNet's quick checks got 20-42 steps of 128 in 5-7 minutes, too few
to tell learning from noise; this net gets 100-115.

What chose the recipe (dev = the 120 LFW dev people, all pairs; "cos" = mean cosine between
different dev people; ORL never read):
- The loss is right: on a toy (8 LFW people x 4 images, full batch, no augmentation,
  ``/work/runs/face5_quick/toy.py``) CosFace (scale 30, margin 0.35) takes free embeddings to 0
  training errors in 10 steps, the MobileFaceNet from 30 to 10 of 32 in 6 steps, this net with
  weight standardisation to 2 of 32 in 12 steps (cos 0.01). Without weight standardisation
  the EmbedNet (committed widths) collapses even there: all 32 faces one class, cos 1.00, at
  rates 0.05 and 0.01. ``standardize`` is on.
- CosFace from scratch on the 1,598 people (10,240 images, batch 128, rate 0.05, margin
  grown over 200 steps; ``/work/runs/face5_quick/quick.py``): without ``embed_norm`` the
  embeddings collapse (cos 0.16 -> 0.998 by step 50; dev EER 49.0% at steps 50 and 100);
  with it they stay spread (cos 0.28, 0.14, 0.27 at steps 40 / 80 / 115) but 1.4 epochs learn
  nothing measurable (dev EER 50.1 -> 47.4, 48.9, 47.7%; training error 0.995).
- The contrastive stage first (as ``embed_face_lfw.py``, which is how the committed EmbedNet
  escaped the same collapse), with ``embed_norm`` on, 9 minutes on every training image
  (13,309, batch 128, rate 0.05, ``CONTRASTIVE_FACE_AUGMENT``): it learns. Steps 0 / 20 / 40 /
  60 / 80 / 103: dev EER 50.1, 50.0, 49.7, 49.4, 48.2, 46.6%; NT-Xent loss 5.61, 5.45, 5.37,
  5.29, 5.18 (chance ln 255 = 5.54); cos 0.16, 0.65, 0.43, 0.28, 0.26, 0.25. So the recipe is
  the committed two-stage one on this net: 4 contrastive epochs (the dev EER keeps the best),
  then CosFace from that model with everything as ``embed_face_lfw.py`` (scale 30, margin 0.35
  grown over 10 epochs, ``FACE_AUGMENT``, rate 0.05, plateau cuts on the dev EER).
- Not tried for lack of time: class-balanced sampling for the CosFace stage (the collapse is
  not the prior's doing once ``embed_norm`` holds the embeddings apart), a lower CosFace
  rate, this recipe on the MobileFaceNet.
"""

from pretrain.configs import embed_face_lfw

INPUT_SIZE = (112, 96)


def get_config() -> dict:
    """embed_face_lfw's two stages and evaluation on the widened net, with ``embed_norm``."""
    config = embed_face_lfw.get_config()
    options = config["shared"]["model_options"]
    config["shared"]["model_options"] = {
        **options,
        "standardize": True,
        "embed_norm": True,
        "stem_width": 32,
        "widths": (48, 96, 96, 192, 192, 384, 512, 1024),
    }
    for part in (config["shared"], *config["stages"].values()):
        part["dataset_options"] = {**part["dataset_options"], "input_size": INPUT_SIZE}
    config["evaluation_options"] = {
        **config.get("evaluation_options", {}),
        "test_views": {"mirror": True, "shift_px": 3, "zoom": 1.08},
    }
    return config
