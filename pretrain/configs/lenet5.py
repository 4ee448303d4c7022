"""Caffe LeNet-5 on MNIST, the Deep Compression paper's reference (0.80% test error).

Command:
  python -m pretrain --config pretrain/configs/lenet5.py --workdir runs/lenet5
Expected: test error about 0.7% (target <= 0.80%): 0.65% in 18 epochs on 2026-12-01 (bench-pretrain).
Time here (2 CPU cores, shared with other jobs at load ~12): 644 s.
"""


def get_config() -> dict:
    return {
        "model": "lenet5",
        "model_options": {
            "init_std": (0.28, 0.063, 0.05, 0.045),
            "bias_init": (0.0, 0.0, 0.0, 0.0),
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
