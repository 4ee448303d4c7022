"""LeNet-300-100 on MNIST, the Deep Compression paper's reference (1.64% test error).

Command:
  python -m pretrain --config pretrain/configs/lenet300.py --workdir runs/lenet300
Expected: test error about 1.5% (target <= 1.64%).
Time here (2 CPU cores): TBD.
"""


def get_config() -> dict:
    return {
        "model": "lenet300",
        "model_options": {"init_std": (0.05, 0.08, 0.14), "bias_init": (0.0, 0.0, 0.0)},
        "dataset": "mnist",
        "batch_size": 64,
        "epochs": 60,
        "learning_rate": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "plateau_factor": 0.1,
        "plateau_patience": 3,
        "early_stop_patience": 8,
    }
