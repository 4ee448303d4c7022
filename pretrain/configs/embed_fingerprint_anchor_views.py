"""The committed fingerprint backbone with a second registration hypothesis (registered and
decided 2026-12-05 on synthetic dev prints; the backbone's weights are unchanged).

``crop="anchor_views"``: the same anchor windows as ``embed_fingerprint_anchor.py`` (training,
if this config were run, reads the same cache entries), and a spec
(:data:`devices.localiser.ANCHOR_VIEWS_SPEC`) whose prints with a flat localiser heatmap - the
best logit beats the best one at least 4 blocks away by less than
:data:`devices.localiser.SECOND_ANCHOR_BELOW` - also give a window at that second peak. A pair
of prints scores the best cosine over the windows the two hold
(:func:`pretrain.evaluation.spec_scorer`); the device scores a capture by its best window.

Why (dev only): on the generator's dev prints the localiser's two impressions of a finger land
more than 64 px apart on 8-9% of genuine pairs, mostly on prints whose heatmap is flat; giving
every print a second window (the heatmap's second peak) recovered some of those but made
impostors alike too (dev EER 3.05 -> 3.14%, not adopted). Gating it on the heatmap's margin keeps
the second window to the prints that need it.

What chose what (a rule written before measuring, quoted in notebooks/results/
fingerprint_ablation.md, "A second window where the heatmap is flat"): the gate, among the 5 / 10 / 20 / 30% quantiles of the
margins on the mixed generator's dev prints (val ids 0-99 x 8, seed 0; all 2,800 genuine and
316,800 impostor pairs), the 10% one (4,815; EER 2.96 -> 2.80%, FNMR at FMR 1% 7.46 -> 7.11, FRR
at FAR 1e-3 24.04 -> 23.11); confirmed on ids 5000-5099 x 8, which neither the backbone nor the
localiser trained on (EER 3.24 -> 3.13, bar: at least 0.10 lower; FNMR 8.29 -> 7.89; FRR at
1e-3 26.21 -> 24.89). FVC was measured after the decision, reported only.

Scored and saved by ``bench_embed.py --only fingerprint --fingerprint-model <a copy of the
committed model> --fingerprint-config pretrain/configs/embed_fingerprint_anchor_views.py``.
"""

from pretrain.configs.embed_fingerprint_anchor import get_config as anchor


def get_config() -> dict:
    config = anchor()
    options = config["stages"]["anchor"]["dataset_options"]
    config["stages"]["anchor"]["dataset_options"] = {**options, "crop": "anchor_views"}
    return config
