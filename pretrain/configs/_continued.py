"""The generator-realism runs' shape: one stage of an earlier config, continued from a backbone on
prints of another generator (``embed_fingerprint_placement.py`` and the runs after it)."""


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
