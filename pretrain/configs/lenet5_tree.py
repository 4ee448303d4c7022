"""A conditional LeNet-5 on MNIST: LeNet-5's conv1 as the trunk, a router, 2 branches (conv 16@5x5,
fc 128); one branch runs per image: 840k MACs against LeNet-5's 2.29M. The router is trained on
class groups: {4, 7, 9} to branch 1, the other digits to branch 0 (about 30/70 of the images).

Command:
  python -m pretrain --config pretrain/configs/lenet5_tree.py --workdir runs/lenet5_tree --set epochs=6
Expected: ``make bench-tree`` trains it beside LeNet-5 with the same 6-epoch budget and reports
test accuracy, MACs, latency and each branch's share (notebooks/results/tree.json).
Time here (2 cores shared, load ~12): ~45 s per epoch.

What chose what (MNIST's validation split, 6 epochs, plateau_patience 1, 2026-12-02):
- B = 2 and the branch widths (16, 128): training speed (4 branches: 380 images/s, 2: 1,400-1,900),
  validation error and LiteRT latency vs LeNet-5 (2.01x, widths (12, 128) 1.93x, (12, 256) 1.80x).
- The groups: ``pretrain.tree.groups_from_model("notebooks/results/models/lenet5", branches=2)``
  (class means of the trunk's features on 20,000 training images, the split with the least
  scatter and every group >= 15% of the images; 25 s).
- overlap: validation error 1.24% (0), 1.08% (0.1), 1.22% (0.3), each routing 70/30 with the
  router right on 98.5-98.6% of the images; LeNet-5 0.98% in the same budget (bench, 2026-12-02).
- Learned routing without groups sent every image to branch 0 (balance 0.1, val 1.76% at 3
  epochs); a 5x load loss split 77/23 at 2.46%.
"""

from pretrain.configs import lenet5


def get_config() -> dict:
    """LeNet-5's training recipe (lenet5.py), with the conditional model and its routed task."""
    config = lenet5.get_config()
    config["model"] = "lenet5_tree"
    config["model_options"] = {
        "branches": 2,
        "trunk_features": 20,
        "branch_features": 16,
        "branch_hidden": 128,
    }
    config["task"] = "routed_classification"
    config["task_options"] = {
        "temperature_start": 1.0,
        "temperature_end": 0.05,
        "anneal_steps": 2500,
        "balance": 0.0,
        "groups": (0, 0, 0, 0, 1, 0, 0, 1, 0, 1),
        "route_weight": 1.0,
        "overlap": 0.1,
    }
    return config
