"""The bench scripts end bad input with the project's one-line message, never a traceback."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pretrain.compression as pc

ROOT = Path(__file__).parents[1]
BENCH = ROOT / "notebooks" / "bench"
WORKERS = {"bench_pretrain_keras.py"}  # started by bench_pretrain, not by a user


def _load_bench(script: str, name: str, monkeypatch) -> Any:
    """A bench script loaded as module ``name`` (a bench script in sys.modules under its own
    name would look like a module that shadows it: test_layout); its sibling scripts, imported
    by their names, do not stay importable by name either."""
    monkeypatch.syspath_prepend(str(BENCH))  # for its `_results`
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location(name, BENCH / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        for loaded in set(sys.modules) - before:
            if loaded.startswith("bench_"):
                sys.modules.pop(loaded)
    return module


def test_every_bench_runs_its_main_through_run_main() -> None:
    for script in sorted(BENCH.glob("bench_*.py")):
        if script.name not in WORKERS:
            tail = script.read_text().rstrip().splitlines()[-1].strip()
            assert tail == "run_main(main)", f"{script.name} ends with {tail!r}"


def test_missing_datasets_end_with_one_line_and_status_2(tmp_path: Path) -> None:
    env = {**os.environ, "POCKETFIT_DATA": str(tmp_path)}
    args = ["--tasks", "mnist", "--no-cnn", "--workdir", str(tmp_path / "curves")]
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_curves.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("bench_curves.py: error: No 'mnist' folder under POCKETFIT_DATA")


def test_enroll_timing_replaces_the_rows_figures_and_keeps_their_names(monkeypatch) -> None:
    """bench_enroll's rows get the fresh-process medians under their old keys, the bench's own
    in-process figures beside them; bench-enroll's speed is then the ratio of the medians."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))  # the module sets them; restored after
    apply_timing = _load_bench("bench_enroll_timing.py", "_enroll_timing", monkeypatch).apply_timing

    def side(enroll: list[float], **parts: float) -> dict:
        out = {
            "enroll": {
                "median": sorted(enroll)[1],
                "range": [min(enroll), max(enroll)],
                "rounds": enroll,
            }
        }
        return {**out, **{k: {"median": v} for k, v in parts.items()}}

    block = {
        "timing": "3 rounds",
        "ms": {
            "device": side([4.0, 6.0, 5.0], embed=2.0, train=1.0, calibrate=2.0, whole_call=40.0),
            "tflite_official_keras": side([12.0, 9.0, 10.0], load=1.5, train=8.5),
        },
        "speed": {"tflite_official_keras": {"ratio": 2.0, "range": [1.5, 3.0]}},
    }
    runs = {
        "pocketfit": {"enroll_ms": 21.7, "embed_ms": 0.7, "train_ms": 11.0},
        "tflite_official_keras": {"enroll_ms": 26.3, "embed_ms": 1.1, "train_ms": 25.2},
        "imprint_only": {"enroll_ms": 2.3},
    }
    apply_timing(runs, block)
    device, keras = runs["pocketfit"], runs["tflite_official_keras"]
    assert (device["enroll_ms"], device["embed_ms"], device["calibrate_ms"]) == (5.0, 2.0, 2.0)
    assert device["whole_call_ms"] == 40.0 and device["enroll_ms_range"] == [4.0, 6.0]
    assert device["in_bench_ms"] == {"enroll": 21.7, "embed": 0.7, "train": 11.0}
    assert (keras["enroll_ms"], keras["embed_ms"], keras["train_ms"]) == (10.0, 1.5, 8.5)
    assert keras["enroll_ms_rounds"] == [12.0, 9.0, 10.0] and keras["timing"] == "3 rounds"
    assert keras["enroll_ms"] / device["enroll_ms"] == 2.0
    assert runs["imprint_only"] == {"enroll_ms": 2.3} and runs["timing"] is block


def test_enroll_face_headline_is_all_40_people_over_the_random_splits(monkeypatch) -> None:
    """Issue 17's ``face.identification_pct`` and the Keras baseline's are the means over the
    random splits of all 40 ORL people; the fixed split's figures move beside them, and the
    5-shot target is the paired difference on those splits."""
    module = _load_bench("bench_enroll.py", "_enroll", monkeypatch)

    def split(*values: float) -> dict:
        return {
            "identification_pct": {"5": sum(values) / len(values)},
            "per_episode": {"5": values},
        }

    out = {
        "face": {
            "identification_pct": {"5": 96.0},
            "episodes": {"identification_pct": {"5": 98.0}},
            "orl_all40": {
                "default": {"episodes": split(97.0, 98.0, 96.0)},
                "tflite_official_keras": {"episodes": split(98.0, 98.0, 99.0)},
            },
        },
        "baselines": {
            "tflite_official_keras": {
                "identification_pct": {"5": 100.0},
                "identification_pct_episodes": {"5": 99.5},
            }
        },
        "targets": {"face_5shot_pct": {"target": 97.0, "measured": 96.0}},
    }
    module.headline_all40(out)
    face, keras = out["face"], out["baselines"]["tflite_official_keras"]
    assert face["identification_pct"] == {"5": 97.0}
    assert face["identification_pct_orl_s21_s40"] == {"5": 96.0}
    assert keras["identification_pct"] == keras["identification_pct_episodes"]
    assert abs(keras["identification_pct"]["5"] - 98.3333) < 1e-3
    assert keras["identification_pct_orl_s21_s40"] == {"5": 100.0}
    assert out["targets"]["face_5shot_pct"]["measured"] == 97.0
    paired = out["targets"]["face_5shot_vs_official_keras_pct"]
    assert abs(paired["measured"] - (97.0 - 98.3333)) < 1e-3
    assert (
        abs(out["targets"]["face_5shot_vs_official_keras_pct_orl_s21_s40"]["measured"] + 1.5) < 1e-9
    )


def test_enroll_set_names_the_captures_of_an_enrolled_fingers_other_label(monkeypatch) -> None:
    """bench-enroll scores no capture against another label of its own finger (FVC2000 DB1
    and DB2 hold the same fingers): those are neither offered nor impostor attempts."""
    import numpy as np

    module = _load_bench("bench_enroll.py", "_enroll", monkeypatch)
    labels = np.array([0, 0, 1, 1, 2, 2])
    owners = ("A/101", "B/102", "A/101")  # labels 0 and 2: one finger in two sets
    data = module.EvalSet("toy", [], labels, np.zeros(6), "", ("A/101", "B/102", "C/101"), owners)
    twin = data.same_owner([0, 1, 2])
    assert (
        twin.tolist() == [[False, False, True]] * 2 + [[False] * 3] * 2 + [[True] + [False] * 2] * 2
    )
    assert not data._replace(owners=()).same_owner([0, 1, 2]).any()


def test_enroll_far_frames_at_the_artifacts_size_and_scores_the_devices_rule(monkeypatch) -> None:
    """bench-enroll-far's threshold study refuses model inputs of another size than the
    artifact's (the signature runner would resize its input and embed them silently), and its
    ``device`` rule scores a probe as the device's face flow does (personalize.head)."""
    import numpy as np
    import pytest

    from devices.cosine import normalize
    from personalize.head import (
        default_match,
        imprint_kernel,
        match_scores,
        templates_of,
        user_cosines,
    )
    from pretrain.evaluation.episodes import enrollment_pools

    module = _load_bench("bench_enroll_far.py", "_enroll_far", monkeypatch)

    with pytest.raises(ValueError, match="input"):
        module._embed_inputs(None, np.zeros((2, 96, 80, 1), np.float32), (112, 96))
    rng = np.random.default_rng(0)
    emb = normalize(rng.standard_normal((40, 8))).astype(np.float32)
    labels = np.repeat(np.arange(4), 10)
    # its first half is the AS-norm cohort (>= 100 rows)
    background = normalize(rng.standard_normal((240, 8))).astype(np.float32)
    trial = module._trials(emb, labels, background, episodes=1, order=None)[0]
    pool, _ = enrollment_pools(labels, pool=5, episode=1, order=None)
    for column, person in enumerate(sorted(pool)):
        owner = emb[pool[person]]
        kernel = imprint_kernel(owner, background[:3])
        for rows, key in ((emb, "mix"), (background, "mix_background")):
            want = match_scores(
                default_match("face"), user_cosines(rows, kernel), rows, templates_of(owner)
            )
            got = trial[key][:, column] if key == "mix" else trial[key][column]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_bench_structured_keeps_fine_tuning_runs_only_in_a_workdir(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    module = _load_bench("bench_structured.py", "_structured", monkeypatch)
    with pytest.raises(SystemExit):
        module.main(["--resume", "--only", "face"])
    assert "--resume continues the runs of a --workdir" in capsys.readouterr().err
    embed = _load_bench("bench_structured_embed.py", "_structured_embed", monkeypatch)
    with embed.run_folder(str(tmp_path), "face") as folder:
        (Path(folder) / "kept").write_text("1")
    assert (tmp_path / "face" / "kept").is_file()  # a workdir's runs stay for --resume
    with embed.run_folder(None, "face") as folder:
        temporary = Path(folder)
        assert temporary.is_dir()
    assert not temporary.exists()


def test_the_shaped_budget_is_picked_by_speed_and_macs_alone(monkeypatch) -> None:
    embed = _load_bench("bench_structured_embed.py", "_structured_embed", monkeypatch)
    assert pc.shaped_keep(0.3, 0.5, 8) == (0.3, 0.3, 0.3, 0.5, 0.5, 0.5, 0.5, 0.5)
    assert pc.shaped_keep(0.3, 0.5, 2) == (0.3, 0.3)
    uniform = {"1.0": {"speedup": 1.0}, "0.4": {"speedup": 2.4, "flops_ratio": 0.24}}
    shaped = {
        "0.3/0.5": {"speedup": 2.45, "flops_ratio": 0.29, "fractions": [0.3, 0.5]},
        "0.3/0.6": {"speedup": 2.1, "flops_ratio": 0.36, "fractions": [0.3, 0.6]},  # too slow
        "0.25/0.5": {"speedup": 2.5, "flops_ratio": 0.28, "fractions": [0.25, 0.5]},
    }
    pick = embed.shaped_pick(uniform, shaped, (0.3, 0.5), "0.4")
    assert pick == {"budget": "0.3/0.5", "against": "0.4", "is_recipe": True}
    assert embed.shaped_pick(uniform, shaped, 0.4, "0.4")["is_recipe"] is False
    slow = {k: {**v, "speedup": 2.0} for k, v in shaped.items()}
    assert embed.shaped_pick(uniform, slow, 0.4, "0.4")["budget"] is None
    # as fast but fewer MACs than the uniform budget: no gain, nothing picked
    wide = {**uniform, "0.5": {"speedup": 2.4, "flops_ratio": 0.3}}
    assert embed.shaped_pick(wide, shaped, 0.5, "0.5")["budget"] is None


def test_a_bench_keeps_its_store_keys_out_of_the_users_folder(tmp_path: Path) -> None:
    """Devices made by a bench put their store keys under runs/bench-keys, not in
    ~/.config/pocketfit/keys; a POCKETFIT_KEYS set by the caller wins."""
    script = tmp_path / "bench_keys_probe.py"
    script.write_text(
        "import os\nfrom _results import run_main\n"
        "def main():\n    print(os.environ['POCKETFIT_KEYS'])\n"
        "run_main(main)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(BENCH)}
    env.pop("POCKETFIT_KEYS", None)
    run = lambda e: subprocess.run(  # noqa: E731
        [sys.executable, str(script)], env=e, capture_output=True, text=True, timeout=120
    )
    done = run(env)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == ROOT / "runs" / "bench-keys"
    done = run({**env, "POCKETFIT_KEYS": str(tmp_path / "mine")})
    assert done.stdout.strip() == str(tmp_path / "mine")


def test_the_placement_backbone_is_adopted_by_the_registered_rule_alone(monkeypatch) -> None:
    bench = _load_bench("bench_fingerprint_generator.py", "_generator", monkeypatch)

    def decide(committed: dict, candidate: dict) -> dict:
        return bench.decide(committed, candidate, base="default", new="placement")

    def figures(default: float, placement: float) -> dict:
        return {"dev_eer_pct": {"default": default, "placement": placement}}

    config = bench.load_config(
        Path(__file__).parents[1] / "pretrain/configs/embed_fingerprint_placement.py"
    )
    assert bench.names(config) == ("default", "placement")
    committed = figures(3.32, 4.79)
    assert decide(committed, figures(3.5, 4.20))["adopt"]
    assert not decide(committed, figures(3.0, 4.35))["adopt"]  # not 0.5 better on placement
    assert not decide(committed, figures(3.90, 3.0))["adopt"]  # over 0.5 worse on default prints
    # FVC figures take no part in it
    fvc = {"fvc_protocol_mean_eer_pct": 1.0}
    assert not decide(committed, {**figures(3.0, 4.35), **fvc})["adopt"]


def test_a_rescored_backbone_keeps_the_backbone_it_replaced(monkeypatch) -> None:
    bench = _load_bench("bench_embed.py", "_embed", monkeypatch)
    figures = {"fvc_protocol": {"2000_DB1_B": {"eer_pct": 9.6}}, "synthetic": {"eer_pct": 3.5}}
    one = {**figures, "model": {"params_sha256": "aa"}}
    assert bench.same_backbone(one, {**figures, "model": {"params_sha256": "aa"}})
    assert not bench.same_backbone(one, {**figures, "model": {"params_sha256": "bb"}})
    # a record from before the digest was kept: the same figures mean the same backbone
    assert bench.same_backbone(figures, one)
    assert not bench.same_backbone(figures, {**one, "synthetic": {"eer_pct": 3.0}})


def test_a_partial_rerun_keeps_the_files_machine_and_records_its_own(
    monkeypatch, tmp_path: Path
) -> None:
    """A bench that updates one section of a results file in place (bench-enroll-far,
    bench-enroll-continual) keeps the machine and command of the run that wrote the file and
    puts its own in the section: the file's provenance stays that of its figures."""
    import json

    results = _load_bench("_results.py", "_results_for_test", monkeypatch)
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    first = {"machine": {"git_commit": "abc"}, "command": "bench_enroll.py"}
    section = results.this_run()
    assert set(section) == {"machine", "command"} and section["machine"]["git_commit"]
    path = results.write_results(
        "r", {"far": {"x": 1, **section}}, command=first["command"], machine=first["machine"]
    )
    written = json.loads(path.read_text())
    assert written["machine"] == first["machine"] and written["command"] == "bench_enroll.py"
    assert written["far"]["machine"] == json.loads(json.dumps(section["machine"]))
    fresh = json.loads(results.write_results("s", {}).read_text())
    assert fresh["machine"]["git_commit"] == section["machine"]["git_commit"]


def test_enroll_rerun_of_one_modality_keeps_the_others_figures(monkeypatch) -> None:
    """``bench_enroll.py --only fingerprint`` replaces the fingerprint's figures and keeps the
    face run's (headline keys, file machine); ``--only face`` keeps the fingerprint's, its far
    rows included. ``runs`` names the run behind each modality's figures."""
    module = _load_bench("bench_enroll.py", "_enroll", monkeypatch)
    face_run = {"machine": {"git_commit": "face"}, "command": "bench_enroll.py"}
    previous = {
        **face_run,
        "face": {"identification_pct": {"5": 99.0}},
        "fingerprint": {"fvc": {"identification_pct": {"5": 82.0}, "far_measured": 0.04}},
        "baselines": {"imprint_only": {"face": 1, "fingerprint": 2}, "tflite_official": {}},
        "sizes": {"face": 3, "fingerprint": 4},
        "far": {"face": 5, "fingerprint_fvc": 6},
        "targets": {"face_5shot_pct": 99.0},
    }
    new_fp = {
        "fingerprint": {"fvc": {"identification_pct": {"5": 88.0}}},
        "baselines": {"imprint_only": {"fingerprint": 7}, "tflite_official": {"fingerprint": 8}},
        "sizes": {"fingerprint": 9},
        "targets": {"face_5shot_pct": None},
    }
    merged = module.with_earlier_modalities(previous, new_fp, ("fingerprint",))
    assert merged["fingerprint"]["fvc"]["identification_pct"] == {"5": 88.0}
    assert merged["face"] == previous["face"] and merged["targets"] == previous["targets"]
    assert merged["baselines"]["imprint_only"] == {"face": 1, "fingerprint": 7}
    assert merged["baselines"]["tflite_official"] == {"fingerprint": 8}
    assert merged["sizes"] == {"face": 3, "fingerprint": 9} and merged["far"]["face"] == 5
    assert "machine" not in merged and merged["runs"]["face"] == face_run
    assert merged["runs"]["fingerprint"]["command"] != "bench_enroll.py"
    new_face = {"face": {"identification_pct": {"5": 98.0}}, "sizes": {"face": 10}}
    merged = module.with_earlier_modalities(previous, new_face, ("face",))
    assert merged["face"]["identification_pct"] == {"5": 98.0}
    assert merged["fingerprint"] == previous["fingerprint"]
    assert merged["sizes"] == {"face": 10, "fingerprint": 4}
    assert merged["far"] == {"fingerprint_fvc": 6}  # the face's far rows: this run's far_section
    assert merged["runs"]["fingerprint"] == face_run  # the file's run measured both


def test_the_fusion_default_is_decided_by_the_registered_rule(monkeypatch) -> None:
    bench = _load_bench("bench_enroll_fusion.py", "_enroll_fusion", monkeypatch)

    def rows(frr: float, far_device: float, far_check: float) -> dict:
        return {
            "2e-05": {"frr_pct": frr, "far_over_target": far_device},
            "0.001": {"frr_pct": 10.0, "far_over_target": far_check},
        }

    plain = rows(49.8, 3.16, 2.52)
    assert not bench.decide({"plain": plain, "fused": rows(34.0, 6.63, 2.71)})["fuse_by_default"]
    assert bench.decide({"plain": plain, "fused": rows(34.0, 4.70, 3.70)})["fuse_by_default"]
    assert not bench.decide({"plain": plain, "fused": rows(50.0, 1.0, 1.0)})["fuse_by_default"]
    # a plain variant without accepts: the fused one may still reach the target itself
    none = rows(53.3, 0.0, 1.26)
    assert bench.decide({"plain": none, "fused": rows(40.0, 1.0, 1.07)})["fuse_by_default"]
    assert not bench.decide({"plain": none, "fused": rows(40.0, 1.2, 1.07)})["fuse_by_default"]


def test_fusion_accepts_are_counted_by_identity_pair(monkeypatch) -> None:
    bench = _load_bench("bench_enroll_fusion.py", "_enroll_fusion", monkeypatch)
    labels = np.repeat(np.arange(3), 2)  # captures of identities 0, 0, 1, 1, 2, 2
    ids = [0, 1, 2]
    impostor = labels[:, None] != np.asarray(ids)[None, :]
    scores = np.zeros((6, 3))
    scores[[2, 3, 4], 0] = 0.9  # identity 0's record accepts 1 twice and 2 once
    scores[0, 0] = 0.9  # its own capture: not an impostor attempt
    scores[5, 1] = 0.7  # under identity 1's threshold
    pairs = bench.identity_pairs(scores, np.asarray([0.5, 0.8, 0.5]), impostor, labels, ids)
    assert pairs == [[0, 1, 2], [0, 2, 1]]
    episode = {"fused": {"accepting_pairs": {"2e-05": pairs}}}
    spread = bench.concentration([episode, episode], "fused", 2e-5)
    assert spread == {"identity_pairs": 2, "largest_pair_share": 4 / 6}
