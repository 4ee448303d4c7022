"""A conditional LeNet-5 on MNIST: LeNet-5's conv1 as the trunk, a learned router, 4 branches.

Command:
  python -m pretrain --config pretrain/configs/lenet5_tree.py --workdir runs/lenet5_tree
Expected: see notebooks/results/tree.json (``make bench-tree`` trains it beside LeNet-5 with
the same epoch budget and reports test error, executed MACs and LiteRT latency of both).
"""


def get_config() -> dict:
    return {
        "model": "lenet5_tree",
        "model_options": {
            "branches": 4,
            "trunk_features": 20,
            "branch_features": 20,
            "branch_hidden": 256,
        },
        "task": "routed_classification",
        "task_options": {
            "temperature_start": 1.0,
            "temperature_end": 0.05,
            "anneal_steps": 2500,
            "balance": 0.1,
        },
        "dataset": "mnist",
        "batch_size": 64,
        "epochs": 40,
        "learning_rate": 0.02,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "plateau_factor": 0.1,
        "plateau_patience": 3,
        "early_stop_patience": 8,
    }
