"""Face EmbedNet at 1.5x the widths (1.71M parameters): ``embed_face_wide.py``'s recipe with only
the stem and block widths changed (the 1024-wide last layer kept). A measured step, not the
committed backbone: dev did not choose it (below).

Command (about 65 minutes on 2 free cores; resumable, checkpoints every epoch):
  XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= POCKETFIT_CACHE=/work/main/runs/cache \\
    setsid nohup python -m pretrain --config pretrain/configs/embed_face_wide15.py \\
    --workdir /work/runs/face6 > /work/runs/face6.log 2>&1 &
  (add --resume to continue after an interruption; the dev and ORL figures of the finished
  run are in its ``evaluation.json``).
Expected: a lower LFW dev EER than the committed 1.0M-parameter net (one view 16.20%,
  flip-averaged 15.46%), since capacity moved it most so far (107K -> 338K -> 1.0M parameters:
  21.97 -> 16.20%). Measured 2026-12-03 (run started 22:14 UTC, free cores, at commit 200b714
  with this file's widths as ``--set`` overrides of embed_face_wide.py): contrastive dev EER
  45.4, 42.0, 42.2, 39.8% (epochs 1-4; the 1.0M net 48.4, 45.2, 44.4, 43.0%); CosFace 38.8
  (epoch 1), 24.9 (10), 20.1 (20), 17.5 (29, rate 0.005 from there), 16.2 (37), 16.1 (45,
  0.0005), best 16.04% at epoch 59 (5e-05 from 52), early stop after epoch 63. Flip-averaged
  dev EER **15.23%** (5-shot 67.8%, FRR at FAR 1e-3 76.6%) against the committed 15.46%
  (66.4%, 77.2%): -0.23 points for 1.7x the parameters.
  The rule, written down before the flip-averaged dev figure was read: adopt only at <= 14.46%
  (a point below the committed net, which also pays for exceeding issue 14's "~1M
  parameters"). Not met: the committed backbone stays. For information, dev only: the two
  nets' unit embeddings concatenated read 14.60% (5-shot 70.2%), a second model's variance
  reduction worth more than the extra width, and still not a point.
  Reported, read after the choice (the run's evaluation.json writes it): ORL 5-shot 98.9%
  (committed 98.8%), EER 5.38% (committed 4.72%).
Time here: contrastive 4 epochs of 103 steps, 588 s of epoch time (~1.2 s a step of 128
  pairs); CosFace 63 epochs of 80 steps, 3,124 s (42-60 s an epoch, ~0.6 s a step of 128),
  plus ~10 s of dev evaluation an epoch. A step costs 1.44x the 1.0M net's.

What chose what: nothing new; every setting is embed_face_wide.py's (dev = the 120 LFW dev
people; ORL never read in training or choice).
"""

from pretrain.configs import embed_face_wide

STEM_WIDTH = 48
WIDTHS = (72, 144, 144, 288, 288, 576, 768, 1024)


def get_config() -> dict:
    """embed_face_wide's two stages and evaluation with 1.5x the widths (last layer kept)."""
    config = embed_face_wide.get_config()
    options = config["shared"]["model_options"]
    config["shared"]["model_options"] = {**options, "stem_width": STEM_WIDTH, "widths": WIDTHS}
    return config
