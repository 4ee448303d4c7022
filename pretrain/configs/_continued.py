"""The generator-realism runs' shape: one stage of an earlier config, continued from a backbone on
prints of another generator (``embed_fingerprint_placement.py`` and the runs after it).

How the later ones (``embed_fingerprint_period.py``, ``embed_fingerprint_mixed.py``) run and are
decided, ``<name>`` being the config's name:

Command (resumable: ``--resume`` continues the newest checkpoint):
  POCKETFIT_DATA=/work/shared/datasets XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= \\
    POCKETFIT_CACHE=/work/main/runs/cache python -m pretrain \\
    --config pretrain/configs/embed_fingerprint_<name>.py --workdir /work/runs/prints_<name> \\
    --resume --no-evaluation
  (--no-evaluation, added after the period run started: the decision below reports FVC itself)
  then the decision: python notebooks/bench/bench_fingerprint_generator.py \\
    --config pretrain/configs/embed_fingerprint_<name>.py --candidate /work/runs/prints_<name>/model

The flow runs (``embed_fingerprint_flow*.py``, ``embed_fingerprint_steep.py``, built by
:func:`continued_on_views`) start from a copy of the committed model, so that nothing rewriting
the committed folder can race the run's start:
  cp -r notebooks/results/models/embed_fingerprint /work/runs/committed_fp_model
  POCKETFIT_DATA=/work/shared/datasets XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= \\
    POCKETFIT_CACHE=/work/main/runs/cache python -m pretrain \\
    --config pretrain/configs/embed_fingerprint_<name>.py --workdir /work/runs/prints_<name> \\
    --resume --no-evaluation --set <name>.init_from=/work/runs/committed_fp_model

What chooses what (dev = synthetic validation identities 0-99 x 8, seed 0, never trained on):
- the checkpoint: the epoch with the lowest dev EER on prints of the config's ``GENERATOR``;
- adoption: the candidate's dev EER on ``GENERATOR``'s prints at least 0.5 points below the
  committed backbone's, and on ``BASE``'s prints at most 0.5 points above; the bars are the
  committed backbone's figures measured before the run (``bench_fingerprint_generator.py
  --config <config> --no-fvc``, notebooks/results/fingerprint_<name>.json; each config's
  docstring records them). FVC is reported for both, never used to choose.
- the recipe otherwise is the committed backbone's own, started from its weights.
"""


def continued(config: dict, stage: str, name: str, generator: dict, init_from: str) -> dict:
    """``config`` with only its stage ``stage``, renamed ``name``, started from the model in
    ``init_from`` and trained on prints of ``generator`` (the stage's other settings kept)."""
    base = config["stages"][stage]
    options = {**base["dataset_options"], "generator": generator}
    return {
        "shared": config["shared"],
        "stages": {name: {**base, "init_from": init_from, "dataset_options": options}},
        "evaluation": config["evaluation"],
    }


def continued_on_views(
    config: dict, stage: str, name: str, generator: dict, init_from: str, **settings: object
) -> dict:
    """:func:`continued`, on the committed backbone's own anchor windows
    (``crop="anchor_views"``), with ``settings`` (rate, epochs) replacing the stage's: the shape
    of the flow runs (``embed_fingerprint_flow*.py``)."""
    config = continued(config, stage, name, generator, init_from)
    run = config["stages"][name]
    run["dataset_options"] = {**run["dataset_options"], "crop": "anchor_views"}
    run.update(settings)
    return config
