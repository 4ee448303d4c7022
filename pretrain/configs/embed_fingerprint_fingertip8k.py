"""Fingerprint EmbedNet on twice the fingers: the committed (fingertip) backbone continued on
8,000 training identities of its own generator instead of 4,000. Registered 2026-12-07
(notebooks/results/fingerprint_ablation.md, "Twice the fingers"), before the run.

Why (dev only): every backbone since 2026-12-02 has trained on the same 4,000 fingers
(identities 300-4299), redrawn by six generators; the fingertip run's dev EER had flattened
(2.55, 2.46, 2.50% over its last three epochs) with a held-out FRR at FAR 1e-3 of 13.27%. More
fingers is the scale lever the issue names and no run here has measured.

The data: identities 300-8299 x 8 impressions of ``embed_fingerprint_fingertip.py``'s
``GENERATOR`` (the first 4,000 already cached; 32,000 new prints). The held-out ranges do not
move (dev 0-99, test 100-299); the artifact's background and whitening people are drawn after
every identity a backbone read (``export.artifact.sources``), so they move to 8300 on. The
fixed fresh ranges other benches used (4500-4699: the threshold tail rule and the fusion
decision) fall inside the new training range: those choices were made before this run, on a
backbone that never read them; a later choice must draw its people after 8300.
(``bench_enroll_far``'s one-generator backgrounds, 4700-4799 so far, follow the model's last
identity and move by themselves.)

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on),
as ``_continued.py`` says (``<name>`` = fingertip8k):
- the checkpoint: the epoch with the lowest dev EER on the fingertip generator's prints;
- adoption: the candidate's dev EER on those prints at least 0.5 points below the committed
  backbone's, and on ``BASE``'s (flowmix) at most 0.5 points above, the committed backbone's
  bars measured before the run (``bench_fingerprint_generator.py --config <this> --no-fvc``,
  notebooks/results/fingerprint_fingertip8k.json);
- the recipe is the fingertip run's (rate 1e-3, the same schedule) over 6 epochs of 1,000 steps
  (6,000 steps against its 4,000), set by the time a session has, not measured.

The bars (2026-12-07, before the run): the committed backbone's dev EER is 2.46% on the
fingertip generator's prints and 3.70% on the flowmix ones, so the candidate needs <= 1.96% and
<= 4.20%.

Measured 2026-12-07 (6 epochs, 83 min of training beside other jobs, a 10-minute pause
included, after 36 min drawing the 32,000 new prints): dev EER on the fingertip prints per
epoch 2.60 2.57 2.71 2.43 **2.36** 2.46%; epoch 5's is the candidate. The decision
(notebooks/results/fingerprint_fingertip8k.json): 2.36% on the fingertip prints (bar 1.96) and
4.39% on the flowmix ones (bar 4.20): **not adopted**.
FVC, reported only: mean EER 11.02% (committed 11.21%; paired 95% interval of the difference
-1.57 to +0.70). Twice the fingers, at this length, moved the dev EER 0.1 points.

Command: ``_continued.py``'s for the flow runs, ``<name>`` = fingertip8k.
"""

from pretrain.configs.embed_fingerprint_fingertip import BASE, GENERATOR, on_its_prints

__all__ = ["BASE", "GENERATOR", "get_config"]  # what bench_fingerprint_generator.py reads
IDENTITIES = 8000


def get_config() -> dict:
    config = on_its_prints("fingertip8k", learning_rate=0.001, epochs=6)
    run = config["stages"]["fingertip8k"]
    run["dataset_options"] = {**run["dataset_options"], "identities": IDENTITIES}
    return config
