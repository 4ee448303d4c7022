"""bench-embed: the two identity-embedding backbones, evaluated by the protocol.

Faces (issue 14): the two-stage config ``pretrain/configs/embed_face_wide.py`` (the 1.0M-parameter
EmbedNet at 112x96 on LFW + Extended Yale B, chosen on the LFW dev people over
``embed_face_lfw.py``'s: dev EER 16.20 vs 21.97%; hours here, so its workdir lives outside the
tree and is resumed: ``--face-workdir``, ``--face-config`` for another),
evaluated by the ``faces`` suite on all 40 ORL people (10 random enrollment splits and the fixed
split, EER and FRR over all pairs) and on the LFW development people, with the HOG and LBP
baselines and ``orl_only`` (the previous pipeline, ``embed_face.py``: trained on ORL s1-s20,
evaluated on s21-s40) in the same run. ``--face-checkpoint`` instead scores the newest checkpoint
of a running face job (without touching it) and appends the figures to
``notebooks/results/embedding_face_trend.json``. ``--face-model DIR`` scores a saved backbone
again (its training folders gone; the training figures carried from the last run); without a
finished job in ``--face-workdir`` the committed backbone is scored so (2026-12-04: ~4 minutes
with the ``orl_only`` baseline's training, 2 cores).

Fingerprints: the shipped two-stage config (``embed_fingerprint.py``: contrastive stage 1,
margin-softmax stage 2), its evaluation suite, then stage 2 alone for the same number of
optimizer steps (the ablation).

The backbones are written to ``notebooks/results/models/embed_<name>/`` and the figures to
``notebooks/results/embedding.json``.

  python notebooks/bench/bench_embed.py [--only face|fingerprint] [--workdir runs/bench-embed]
      [--face-workdir /work/runs/face5 | --face-model DIR] [--face-checkpoint]
      [--set <stage>.key=value ...] [--resume]

Measured on 2 shared CPU cores (load average 6-12 from other jobs): fingerprints 52 min with the
print cache warm (the first run also generates 18,400 synthetic prints, ~27 min, cached under
runs/cache). ``--only`` reruns one modality and keeps the other's figures; each modality's
``run`` names the call that measured it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _results import RESULTS, ROOT, print_table, run_main, shown, write_results

import pretrain
from devices.preprocess import FACE_FRAMES, SPECS, PreprocessSpec
from pretrain.config import TrainConfig
from pretrain.embedding import (
    RoleOptions,
    checkpoint_model_params,
    embed,
    face_input_spec,
    face_options,
    face_spec,
    faces_suite,
    fingerprint_suite,
    lfw_role_set,
    lfw_yale_splits,
    orl_faces,
    orl_subjects,
    print_spec,
    roles_for,
    score_set,
    score_variants,
    synthetic_report,
)
from pretrain.embedding.data import synthetic_val_set
from pretrain.evaluation import twin_separation
from pretrain.models import build_model
from pretrain.models.embednet import one_view
from pretrain.staged_config import StagedConfig
from pretrain.train import load_splits

MODALITIES = ("face", "fingerprint")
KEYS = ("eer_pct", "frr_pct_at_far", "identification_pct")
FACE_KEYS = (
    "identification_pct",
    "identification_pct_std",
    "identification_splits",
    "identification_pct_fixed",
    "eer_pct",
    "frr_pct_at_far",
    "identities",
    "samples",
    "genuine_pairs",
    "impostor_pairs",
    "set",
    "frr_not_measured",
)
FACE_CONFIG = ROOT / "pretrain" / "configs" / "embed_face_wide.py"
ORL_ONLY_CONFIG = ROOT / "pretrain" / "configs" / "embed_face.py"
TREND = RESULTS / "embedding_face_trend.json"
VARIANTS = RESULTS / "embedding_face_variants.json"
FINGERPRINT_CONFIG = ROOT / "pretrain" / "configs" / "embed_fingerprint.py"
FINGERPRINT_TREND = RESULTS / "embedding_fingerprint_trend.json"
# Training people's images that fit the training-role whitening (a fixed random subset).
WHITEN_TRAIN_IMAGES = 3000


def scored_options(final: Any, run: Any) -> dict[str, Any]:
    """The saved model's options: the trained ones plus the test-time options the suite scored
    with (flip averaging, test-time views), which are the model's from here on."""
    options = dict(final.info["model_options"])
    if run.evaluation_options.get("flip_average"):
        options["flip_average"] = True
    if run.evaluation_options.get("test_views"):
        options["test_views"] = dict(run.evaluation_options["test_views"])
    return options


def face_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The issue-14 figures of one face report (:func:`pretrain.evaluation.face_report`)."""
    return {k: report[k] for k in FACE_KEYS if k in report}


def orl_only(workdir: Path, *, resume: bool) -> dict[str, Any]:
    """The previous pipeline (``embed_face.py``, ORL s1-s20) on s21-s40, by the same figures."""
    run = pretrain.load_run(ORL_ONLY_CONFIG)
    assert isinstance(run, StagedConfig)
    print("\n== face baseline orl_only: embed_face.py on ORL s1-s20 ==", flush=True)
    started = time.perf_counter()
    result = pretrain.fit_stages(run, workdir, resume=resume)
    final = pretrain.load_model(result.model_dir)
    options = face_options(run.stages[-1][1].dataset_options)
    faces = orl_subjects(range(21, 41), "", **options)
    report = score_set(embed(final.module, final.params, faces.images), faces, baselines=False)
    return {
        **face_figures(report),
        "trained_on": "orl s1-s20",
        "steps": sum(int(st["steps"]) for st in result.stages.values()),
        "wall_s": time.perf_counter() - started,
    }


def training_figures(run: StagedConfig, result: Any, params: int, workdir: Path) -> dict[str, Any]:
    """What the face backbone was trained on: people and images per stage, steps, time.

    A stage's time is the sum of its epochs' training time (``metrics.jsonl``): the job ran in
    several sessions, and a resumed fit times only its own part.
    """
    stages = {}
    for name, config in run.stages:
        train = load_splits(config).train
        lines = (workdir / name / "metrics.jsonl").read_text().splitlines()
        stages[name] = {
            "identities": int(train.labels.max()) + 1,
            "images": len(train),
            "epochs": len(lines),
            "steps": result.stages[name]["steps"],
            "wall_s": sum(float(json.loads(line)["epoch_s"]) for line in lines),
            "dev_eer_pct": result.stages[name]["val_error_pct"],
        }
    first = stages[run.names[0]]
    return {
        "identities": first["identities"],
        "images": first["images"],
        "steps": sum(int(st["steps"]) for st in stages.values()),
        "wall_s": sum(float(st["wall_s"] or 0.0) for st in stages.values()),
        "params": params,
        "stages": stages,
    }


def run_faces(
    workdir: Path,
    face_workdir: Path,
    overrides: list[str],
    *,
    resume: bool,
    face_config: Path = FACE_CONFIG,
    face_model: Path | None = None,
) -> dict[str, Any]:
    """The face backbone at scale (resumed in ``face_workdir``; or the saved ``face_model``
    scored again, by default the committed one when ``face_workdir`` holds no finished job),
    its figures and baselines."""
    run = pretrain.load_run(face_config, overrides)
    assert isinstance(run, StagedConfig), f"{face_config} is not a staged config"
    committed = RESULTS / "models" / "embed_face_lfw"
    no_job = not (face_workdir / "model" / "model.json").is_file()
    if face_model is None and no_job and (committed / "model.json").is_file():
        print(f"no face job in {face_workdir}: scoring the committed backbone", flush=True)
        face_model = committed
    if face_model is not None:
        return rescored_faces(workdir, face_model, run, resume=resume)
    print(f"\n== face: two stages ({', '.join(run.names)}) in {face_workdir} ==", flush=True)
    if not (face_workdir / "model" / "model.json").is_file():
        raise SystemExit(
            f"error: no finished face backbone in {face_workdir} (it trains for hours): run "
            f"the command in {face_config.name}'s docstring with --workdir {face_workdir} to the "
            "end (--resume continues it), score its newest checkpoint with --face-checkpoint, "
            "or score a saved backbone again with --face-model."
        )
    # The finished stages are skipped: this evaluates the job's model with the faces suite.
    result = pretrain.fit_stages(run, face_workdir, resume=True)
    assert result.evaluation is not None, f"{face_config} names no evaluation suite"
    final = pretrain.load_model(result.model_dir)
    training = training_figures(run, result, int(final.info["params"]), face_workdir)
    return face_result(workdir, run, final, result.evaluation, training, resume=resume)


def rescored_faces(workdir: Path, model_dir: Path, run: StagedConfig, *, resume: bool) -> Any:
    """A saved face backbone (e.g. the committed one, whose training folders are gone) scored
    again by ``run``'s evaluation suite and options (its test-time views); the training figures
    are the ones the last bench-embed measured on the job, carried with their command."""
    print(f"\n== face: the saved backbone {model_dir}, scored again ==", flush=True)
    final = pretrain.load_model(model_dir)
    last = run.stages[-1][1]
    evaluation = faces_suite(final.module, final.params, config=last, **run.evaluation_options)
    previous = json.loads((RESULTS / "embedding.json").read_text())["face"]
    # a figure carried twice still names the run that measured it
    carried = previous["training"].get("carried_from") or (
        "the bench-embed run that trained and measured it: " + previous["run"]["command"]
    )
    training = {**previous["training"], "carried_from": carried}
    return face_result(workdir, run, final, evaluation, training, resume=resume)


def face_result(
    workdir: Path,
    run: StagedConfig,
    final: Any,
    evaluation: dict[str, Any],
    training: dict[str, Any],
    *,
    resume: bool,
) -> dict[str, Any]:
    """The issue-14 figures of a scored face backbone, its baselines, and the model saved to
    ``models/embed_face_lfw`` with the options it was scored with."""
    last = run.stages[-1][1]
    orl, dev = evaluation["orl"], evaluation["dev"]
    out = face_figures(orl)
    out["dev"] = {
        **face_figures(dev),
        "baselines": {name: face_figures(b) for name, b in dev["baselines"].items()},
    }
    out["baselines"] = {name: face_figures(b) for name, b in orl["baselines"].items()}
    out["baselines"]["orl_only"] = orl_only(workdir / "orl_only", resume=resume)
    out["training"] = training
    roles = roles_for("", _role_options(last)).record()
    out_dir = RESULTS / "models" / "embed_face_lfw"
    # The preprocessing and the framing travel with the model: the device frames, then resizes.
    options = scored_options(final, run)
    pretrain.save_model(
        out_dir,
        model=final.info["model"],
        model_options=options,
        params=final.params,
        info={
            **final.info["info"],
            "preprocess": face_input_spec(last.dataset_options["input_size"]).to_dict(),
            "framing": {name: frame.to_dict() for name, frame in FACE_FRAMES.items()},
            "roles": roles,
        },
    )
    out["model"] = {
        "dir": str(out_dir.relative_to(ROOT)),
        "params": final.info["params"],
        "model_options": options,
        "config": run.to_dict(),
        "roles": {k: v for k, v in roles.items() if k not in ("dev", "background")},
    }
    return out


def _role_options(config: TrainConfig) -> RoleOptions:
    o = config.dataset_options
    return RoleOptions(
        o.get("dev_people", 120), o.get("background_people", 1000), o.get("role_seed", 0)
    )


def face_trend(face_workdir: Path, face_config: Path = FACE_CONFIG) -> dict[str, Any]:
    """Scores the newest checkpoint of the running face job (ORL and dev, no baselines)."""
    run = pretrain.load_run(face_config)
    assert isinstance(run, StagedConfig)
    stage = next(n for n in reversed(run.names) if (face_workdir / n / "checkpoints").is_dir())
    config = run.stage(stage)
    params, epoch = checkpoint_model_params(face_workdir / stage)
    module = build_model(config.model, **config.model_options)
    started = time.perf_counter()
    ev = faces_suite(module, params, config=config, baselines=False)
    record = {
        # Each record names its job: the file's top-level command is only the latest call's.
        "config": face_config.name,
        "workdir": str(face_workdir),
        "stage": stage,
        "epoch": epoch,
        "orl": face_figures(ev["orl"]),
        "dev": face_figures(ev["dev"]),
        "eval_s": time.perf_counter() - started,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    metrics = face_workdir / stage / "metrics.jsonl"
    if metrics.is_file():
        record["metrics"] = [json.loads(line) for line in metrics.read_text().splitlines()]
    return record


def face_variants(model_dir: Path, face_config: Path = FACE_CONFIG) -> dict[str, Any]:
    """Every test-time variant of a saved face backbone on the dev people and ORL (no baselines),
    and the int8 LiteRT embed of the flip-averaged model (:func:`int8_flip_embed`)."""
    saved = pretrain.load_model(model_dir)
    run = pretrain.load_run(face_config)
    assert isinstance(run, StagedConfig), f"{face_config} is not a staged config"
    config = run.stages[-1][1]
    size = config.dataset_options["input_size"]
    o = _role_options(config)
    dev = lfw_role_set("dev", "", size, o.dev_people, o.background_people, o.seed)
    background = lfw_role_set("background", "", size, o.dev_people, o.background_people, o.seed)
    train = lfw_yale_splits(
        2, size, dev_people=o.dev_people, background_people=o.background_people, role_seed=o.seed
    ).train
    pick = np.random.default_rng(0).permutation(len(train))[:WHITEN_TRAIN_IMAGES]
    started = time.perf_counter()
    scored = score_variants(
        one_view(saved.module),
        saved.params,
        {"dev": dev, "orl": orl_faces(size)},
        background=background,
        train=train.take(pick),
    )
    return {
        "model": str(model_dir),
        "variants": {
            v: {name: face_figures(r) for name, r in sets.items()} for v, sets in scored.items()
        },
        "eval_s": time.perf_counter() - started,
        "int8_flip_embed": int8_flip_embed(saved, dev.images),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
    }


# int8 embed timing: rounds of single-image calls, the median round reported.
TIMING_ROUNDS, TIMING_CALLS = 5, 100


def int8_flip_embed(saved: Any, images: np.ndarray) -> dict[str, Any]:
    """The flip-averaged backbone as one int8 LiteRT ``embed`` (full-integer post-training
    quantization, calibrated on ``images[:400]``): its ops, its agreement with the float JAX
    model on 200 images and its time per image on one thread."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    from jax.experimental import jax2tf

    from pretrain.models.embednet import fold_standardization

    module, params = fold_standardization(
        saved.module.clone(impl="native", flip_average=True), saved.params
    )
    fn = lambda x: module.apply({"params": params}, x)  # noqa: E731
    spec = tf.TensorSpec((1, *images.shape[1:]), tf.float32)
    tf_fn = tf.function(jax2tf.convert(fn, with_gradient=False), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf_fn.get_concrete_function()], tf_fn
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([images[i : i + 1]] for i in range(0, 400, 4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    blob = converter.convert()
    interpreter = Interpreter(model_content=blob, num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]

    def run(x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(inp, x[None])
        interpreter.invoke()
        return interpreter.get_tensor(out)[0]

    int8 = np.stack([run(x) for x in images[:200]])
    ref = embed(module, params, images[:200])
    cos = np.sum(int8 * ref, -1) / np.linalg.norm(int8, axis=-1) / np.linalg.norm(ref, axis=-1)
    rounds = []
    for _ in range(TIMING_ROUNDS):
        start = time.perf_counter()
        for x in images[:TIMING_CALLS]:
            run(x)
        rounds.append(1e3 * (time.perf_counter() - start) / TIMING_CALLS)
    from tensorflow.lite.python import schema_py_generated as schema

    codes = schema.ModelT.InitFromPackedBuf(blob, 0).operatorCodes or []
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return {
        "ops": sorted({names[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in codes}),
        "bytes": len(blob),
        "cosine_int8_vs_float_min": float(cos.min()),
        "ms_per_image": float(np.median(rounds)),
        "ms_rounds": rounds,
        "timing": f"{TIMING_ROUNDS} rounds of {TIMING_CALLS} single-image calls, one thread",
    }


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The protocol's figures of one evaluated set, and of its baseline, without the detail."""
    out = {k: report[k] for k in KEYS}
    out["baseline"] = {
        "method": report["baseline"]["method"],
        **{k: report["baseline"][k] for k in KEYS},
    }
    out["baselines"] = {name: {k: b[k] for k in KEYS} for name, b in report["baselines"].items()}
    for k in (
        "identities",
        "samples",
        "genuine_pairs",
        "impostor_pairs",
        "split",
        "set",
        "sets",
        "same_fingers",
        "domain_offset",
        "domain_offset_by_set",
    ):
        if k in report:
            out[k] = report[k]
    if "frr_not_measured" in report:
        out["frr_not_measured"] = report["frr_not_measured"]
    return out


def input_spec(modality: str, config: TrainConfig) -> PreprocessSpec:
    """The preprocessing the model was trained on: faces may resize or crop differently from
    ``FACE_SPEC`` through their dataset options (``input_size``, ``crop``)."""
    if modality == "face":
        return face_spec(**face_options(config.dataset_options))
    if modality == "fingerprint":
        return print_spec(config.dataset_options)
    return SPECS[modality]


def stage2_alone(run: StagedConfig, steps: int, examples: int) -> StagedConfig:
    """The last stage alone, from a random start, for ``steps`` optimizer steps (whole epochs)."""
    name, config = run.stages[-1]
    per_epoch = examples // config.batch_size
    epochs = math.ceil(steps / per_epoch)
    alone = dataclasses.replace(config, epochs=epochs, init_from="")
    return dataclasses.replace(run, stages=((name, alone),))


def run_modality(
    modality: str, workdir: Path, overrides: list[str], *, resume: bool
) -> dict[str, Any]:
    config_path = ROOT / "pretrain" / "configs" / f"embed_{modality}.py"
    run = pretrain.load_run(config_path, overrides)
    assert isinstance(run, StagedConfig), f"{config_path} is not a staged config"
    print(f"\n== {modality}: two stages ({', '.join(run.names)}) ==", flush=True)
    started = time.perf_counter()
    two = pretrain.fit_stages(run, workdir / "two_stage", resume=resume)
    two_s = time.perf_counter() - started
    total = sum(int(s["steps"]) for s in two.stages.values())
    last = run.stages[-1][1]
    examples = len(load_splits(last).train)
    alone_run = stage2_alone(run, total, examples)
    print(f"\n== {modality}: ablation, stage 2 alone for {total} steps ==", flush=True)
    started = time.perf_counter()
    alone = pretrain.fit_stages(alone_run, workdir / "stage2_only", resume=resume)
    alone_s = time.perf_counter() - started
    assert two.evaluation is not None and alone.evaluation is not None

    out_dir = RESULTS / "models" / f"embed_{modality}"
    final = pretrain.load_model(two.model_dir)
    # The input preprocessing travels with the model, so export repeats it exactly on the device.
    options = scored_options(final, run)
    pretrain.save_model(
        out_dir,
        model=final.info["model"],
        model_options=options,
        params=final.params,
        info={**final.info["info"], "preprocess": input_spec(modality, last).to_dict()},
    )
    stages = {name: {k: v for k, v in s.items()} for name, s in two.stages.items()}
    ablation = {
        "two_stage": {"steps": total, "stages": stages, "seconds": two_s},
        "stage2_only": {
            "steps": sum(int(s["steps"]) for s in alone.stages.values()),
            "stages": alone.stages,
            "seconds": alone_s,
        },
    }
    if modality == "face":
        ablation["two_stage"].update(
            {k: two.evaluation[k] for k in ("eer_pct", "identification_pct")}
        )
        ablation["stage2_only"].update(
            {k: alone.evaluation[k] for k in ("eer_pct", "identification_pct")}
        )
        result = {**figures(two.evaluation), "ablation": ablation}
    else:
        for name, ev in (("two_stage", two.evaluation), ("stage2_only", alone.evaluation)):
            ablation[name]["synthetic"] = {k: ev["synthetic"][k] for k in KEYS}
            ablation[name]["fvc"] = {k: ev["fvc"][k] for k in KEYS}
            ablation[name].update(protocol_keys(ev["fvc_protocol"]))
        result = {**fingerprint_figures(two.evaluation), "ablation": ablation}
    result["model"] = {
        "dir": str(out_dir.relative_to(ROOT)),
        "params": final.info["params"],
        "model_options": options,
        "config": run.to_dict(),
    }
    return result


def protocol_keys(protocol: dict[str, Any]) -> dict[str, Any]:
    """The FVC-protocol result keys of one matcher (``fvc_protocol``, the sensor-set means)."""
    return {k: v for k, v in protocol.items() if k != "baselines"}


def fingerprint_figures(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The issue-15 keys of one fingerprint suite report: ``synthetic`` and ``fvc`` (k-shot and
    all pairs), ``fvc_protocol`` per set with its sensor-set means, and the same FVC-protocol
    keys for each baseline under ``baselines``."""
    protocol = evaluation["fvc_protocol"]
    return {
        "synthetic": figures(evaluation["synthetic"]),
        "fvc": figures(evaluation["fvc"]),
        **protocol_keys(protocol),
        "baselines": protocol["baselines"],
    }


def dev_trend(workdir: Path) -> dict[str, Any]:
    """Each stage's dev EER per epoch (``metrics.jsonl``) of a staged run's workdir."""
    trend = {}
    for metrics in sorted(workdir.glob("*/metrics.jsonl")):
        lines = [json.loads(line) for line in metrics.read_text().splitlines()]
        trend[metrics.parent.name] = [
            {
                k: line.get(k)
                for k in (
                    "epoch",
                    "step",
                    "val_error",
                    "train_loss",
                    "train_error",
                    "lr",
                    "epoch_s",
                )
            }
            for line in lines
        ]
    return trend


def fingerprint_job(
    job: Path, config_path: Path, overrides: list[str], *, checkpoint: bool
) -> dict[str, Any]:
    """A long fingerprint run in ``job`` (``--fingerprint-workdir``), evaluated without training:
    its finished model (every stage done: ``fit_stages`` skips them and runs the suite), or with
    ``checkpoint`` the best-on-dev parameters of the newest checkpoint of its newest stage
    (copied first: the running job is not disturbed)."""
    run = pretrain.load_run(config_path, overrides)
    assert isinstance(run, StagedConfig), f"{config_path} is not a staged config"
    started = time.perf_counter()
    if checkpoint:
        stage = next(n for n in reversed(run.names) if (job / n / "checkpoints").is_dir())
        config = run.stage(stage)
        params, epoch = checkpoint_model_params(job / stage)
        module = build_model(config.model, **config.model_options)
        evaluation = fingerprint_suite(module, params, config=config)
        source = {"stage": stage, "epoch": epoch, "checkpoint": True}
        final = None
        scored = (module, params, config)
    else:
        if not (job / "model" / "model.json").is_file():
            raise SystemExit(
                f"error: no finished fingerprint backbone in {job}: run the command in "
                f"{config_path.name}'s docstring with --workdir {job} to the end (--resume "
                "continues it), or score its best checkpoint so far with "
                "--fingerprint-checkpoint."
            )
        result = pretrain.fit_stages(run, job, resume=True)
        assert result.evaluation is not None, f"{config_path} names no evaluation suite"
        evaluation, final = result.evaluation, pretrain.load_model(result.model_dir)
        source = {"stages": result.stages, "checkpoint": False}
        scored = (final.module, final.params, run.stages[-1][1])
    out = {
        **fingerprint_figures(evaluation),
        **default_generator_figures(*scored),
        **twin_figures(*scored),
    }
    out["training"] = {**source, "dev_eer_trend": dev_trend(job), "workdir": shown(job)}
    out["eval_s"] = time.perf_counter() - started
    out["measured"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if final is not None:
        out["model"] = save_fingerprint(final, run)
    return out


def rescored_fingerprint(
    model_dir: Path, config_path: Path, overrides: list[str]
) -> dict[str, Any]:
    """A saved fingerprint backbone (a long run whose folders are gone) scored again by its staged
    config's suite, without training, then saved as the committed backbone: the held-out
    synthetic identities of the config's generator (``synthetic``) and, when that is not the
    default generator, the same identities as the default generator renders them
    (``synthetic_default_generator``); the FVC sets and protocol with both baselines. The training
    figures are the model's own record (each stage's best dev EER and steps)."""
    run = pretrain.load_run(config_path, overrides)
    assert isinstance(run, StagedConfig), f"{config_path} is not a staged config"
    if not (model_dir / "model.json").is_file():
        raise SystemExit(f"error: no saved backbone in {model_dir} (no model.json).")
    print(f"\n== fingerprint: the saved backbone {model_dir}, scored again ==", flush=True)
    started = time.perf_counter()
    final = pretrain.load_model(model_dir)
    last = run.stages[-1][1]
    evaluation = fingerprint_suite(final.module, final.params, config=last)
    out = {
        **fingerprint_figures(evaluation),
        **default_generator_figures(final.module, final.params, last),
        **twin_figures(final.module, final.params, last),
    }
    out["training"] = {
        "stages": final.info["info"].get("stages", {}),
        "checkpoint": False,
        "dev_eer_trend": {},
        "model_dir": shown(model_dir),
        "config": shown(config_path),
    }
    out["eval_s"] = time.perf_counter() - started
    out["measured"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out["model"] = save_fingerprint(final, run)
    return out


def default_generator_figures(module: Any, params: Any, config: TrainConfig) -> dict[str, Any]:
    """``{"synthetic_default_generator": ...}``: the held-out synthetic identities as the default
    generator renders them, when ``config`` trains on another generator (else ``{}``), so runs
    on different generators compare on the same prints."""
    if not config.dataset_options.get("generator"):
        return {}
    options = {**config.dataset_options, "generator": None}
    return {"synthetic_default_generator": figures(synthetic_report(module, params, options))}


def twin_figures(module: Any, params: Any, config: TrainConfig) -> dict[str, Any]:
    """``{"synthetic_twins": ...}``: the dev identities (never trained on) drawn by ``config``'s
    generator as flow twins (``twin_share`` 1), scored by
    :func:`pretrain.evaluation.twin_separation`: whether the backbone reads ridge detail or only
    the flow (a twin EER near 50% is blind to ridge detail)."""
    generator = {**(config.dataset_options.get("generator") or {}), "twin_share": 1.0}
    options = {**config.dataset_options, "generator": generator}
    dev = synthetic_val_set(**options)  # identities 0..n-1, labelled so: twins are 2k, 2k + 1
    return {"synthetic_twins": twin_separation(embed(module, params, dev.images), dev.labels)}


def save_fingerprint(final: Any, run: StagedConfig) -> dict[str, Any]:
    """Writes the fingerprint backbone to ``models/embed_fingerprint`` with the preprocessing it
    was trained on (the device repeats it from the artifact). ``pretrain.save_model`` swaps the
    pair of files in at once, so the committed backbone itself may be the one rescored
    (``--fingerprint-model notebooks/results/models/embed_fingerprint``): a failed save leaves
    it as it was."""
    out_dir = RESULTS / "models" / "embed_fingerprint"
    options = scored_options(final, run)
    spec = input_spec("fingerprint", run.stages[-1][1])
    pretrain.save_model(
        out_dir,
        model=final.info["model"],
        model_options=options,
        params=final.params,
        info={**final.info["info"], "preprocess": spec.to_dict()},
    )
    saved = json.loads((out_dir / "model.json").read_text())
    return {
        "dir": str(out_dir.relative_to(ROOT)),
        "params": final.info["params"],
        "params_sha256": saved.get("params_sha256"),
        "model_options": options,
        "config": run.to_dict(),
    }


def same_backbone(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two fingerprint results score one backbone (a re-score): the same parameters'
    digest, or, for a record written before the digest was kept, the same FVC protocol and
    held-out synthetic figures."""
    digests = old.get("model", {}).get("params_sha256"), new.get("model", {}).get("params_sha256")
    if all(digests):
        return digests[0] == digests[1]
    return old.get("fvc_protocol") == new.get("fvc_protocol") and old.get("synthetic", {}).get(
        "eer_pct"
    ) == new.get("synthetic", {}).get("eer_pct")


def decided_runs() -> list[tuple[str, Path, dict[str, Any]]]:
    """Every decided training run (``fingerprint_<name>.json`` holding a ``decision``, as
    ``bench_fingerprint_generator.py`` writes it): ``(name, path, record)``, oldest first."""
    runs = []
    for path in RESULTS.glob("fingerprint_*.json"):
        record = json.loads(path.read_text())
        if "decision" in record:
            runs.append((path.stem.removeprefix("fingerprint_"), path, record))
    return sorted(runs, key=lambda run: run[2]["machine"]["utc"])


def job_ablation(result: dict[str, Any]) -> dict[str, Any]:
    """What the long run's parts did: each stage's best dev EER (the warm stage on a subset of
    identities, then all of them), and the backbone it replaces (the previous ``embedding.json``
    fingerprint figures, when they hold the FVC protocol; a re-score of the same backbone keeps
    the previous record's). The input variants (registration)
    are measured by ``bench_fingerprint_ablation.py`` (``fingerprint_ablation.json``)."""
    out: dict[str, Any] = {
        "stages": {
            name: {"dev_eer_pct": stage.get("val_error_pct"), "steps": stage.get("steps")}
            for name, stage in result["training"].get("stages", {}).items()
        },
        "input_variants": "notebooks/results/fingerprint_ablation.json",
    }
    for step, path, record in decided_runs():  # each run against the backbone it continued
        out[f"{step}_generator"] = {
            "source": str(path.relative_to(ROOT)),
            "git_commit": record["machine"]["git_commit"],
            "generator": record["generator"],
            **{
                name: {
                    "dev_eer_pct": row["dev_eer_pct"],
                    "fvc_protocol_mean_eer_pct": row.get("fvc_protocol_mean_eer_pct"),
                }
                for name, row in record["rows"].items()
            },
            "adopted": record["decision"]["adopt"],
        }
    previous = RESULTS / "embedding.json"
    if previous.exists():
        old = json.loads(previous.read_text()).get("fingerprint", {})
        keys = ("fvc_protocol", "fvc_protocol_mean_eer_pct", "fvc_protocol_mean_fnmr_at_fmr1_pct")
        if same_backbone(old, result):  # a re-score: the backbone it replaced stays the same
            if "previous_backbone" in old.get("ablation", {}):
                out["previous_backbone"] = old["ablation"]["previous_backbone"]
        elif "fvc_protocol" in old:
            out["previous_backbone"] = {
                "synthetic": old["synthetic"],
                **{k: old[k] for k in keys if k in old},
                "model": old.get("model", {}).get("config"),
            }
    return out


def print_fingerprint(r: dict[str, Any]) -> None:
    """The FVC protocol per set of a fingerprint result, beside its baselines."""
    rows = []
    for name, fig in [("backbone", r), *r["baselines"].items()]:
        per_set = fig["fvc_protocol"]
        rows.append(
            [name, fig["fvc_protocol_mean_eer_pct"]]
            + [per_set[s]["eer_pct"] for s in sorted(per_set)]
        )
    print_table(["matcher", "FVC mean EER %", *sorted(r["fvc_protocol"])], rows)
    syn = r["synthetic"]
    print(f"synthetic: EER {syn['eer_pct']:.2f}%, FRR at FAR 1e-3 {syn['frr_pct_at_far']['1e-3']}%")
    if "training" in r:
        for stage, lines in r["training"]["dev_eer_trend"].items():
            print(f"dev EER {stage}: " + " ".join(f"{100 * x['val_error']:.2f}" for x in lines))


def table(results: dict[str, Any]) -> None:
    rows = []

    def add(name: str, r: dict[str, Any]) -> None:
        ident = r["identification_pct"]
        rows.append((name, r["eer_pct"], ident["1"], ident["3"], ident["5"]))

    if "face" in results:
        face = results["face"]
        add("face ORL s1-s40: LFW + Yale B two-stage (10 splits)", face)
        add(
            "face ORL: fixed split",
            {**face, "identification_pct": face["identification_pct_fixed"]},
        )
        for name, b in face["baselines"].items():
            add(f"face baseline {name}" + (" (s21-s40)" if name == "orl_only" else ""), b)
        add("face LFW dev people (10 splits)", face["dev"])
    if "fingerprint" in results:
        fp = results["fingerprint"]
        splits = [s for s in ("synthetic", "synthetic_default_generator", "fvc") if s in fp]
        for split in splits:
            add(f"fingerprint {split}: two-stage", fp[split])
            if split in fp["ablation"].get("stage2_only", {}):
                add(f"fingerprint {split}: stage 2 alone", fp["ablation"]["stage2_only"][split])
            add(
                f"fingerprint {split}: baseline {fp[split]['baseline']['method']}",
                fp[split]["baseline"],
            )
    print()
    print_table(("set / model", "EER %", "1-shot %", "3-shot %", "5-shot %"), rows)
    if "fingerprint" in results and "fvc_protocol" in results["fingerprint"]:
        print_fingerprint(results["fingerprint"])
    twins = results.get("fingerprint", {}).get("synthetic_twins")
    if twins:
        print(
            f"flow twins (dev): genuine / twin / other cosine {twins['genuine_cosine_mean']:.2f} / "
            f"{twins['twin_cosine_mean']:.2f} / {twins['impostor_cosine_mean']:.2f}, "
            f"twin EER {twins['twin_eer_pct']:.1f} % (50 = blind to ridge detail)"
        )
    for split in ("synthetic", "synthetic_default_generator"):
        if split in results.get("fingerprint", {}):
            frr = results["fingerprint"][split]["frr_pct_at_far"]
            print(
                f"{split} FRR at FAR 1e-2 / 1e-3 / 2e-5: "
                f"{frr['1e-2']:.2f} / {frr['1e-3']:.2f} / {frr['2e-5']:.2f} %"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=MODALITIES, action="append")
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench-embed"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true", help="continue an interrupted bench")
    parser.add_argument(
        "--face-workdir",
        default=str(ROOT / "runs" / "face_wide"),
        help="the face job's workdir (resumed; keep it outside the tree)",
    )
    parser.add_argument(
        "--face-model",
        metavar="MODEL_DIR",
        help="score a saved face backbone again (e.g. notebooks/results/models/embed_face_lfw) "
        "instead of the job in --face-workdir; training figures carried from the last run",
    )
    parser.add_argument(
        "--face-checkpoint",
        action="store_true",
        help="score the running face job's newest checkpoint, append to the trend",
    )
    parser.add_argument(
        "--face-config",
        default=str(FACE_CONFIG),
        help="the face job's staged config (embed_face_lfw.py or its later stages' config)",
    )
    parser.add_argument(
        "--face-variants",
        metavar="MODEL_DIR",
        help="score the test-time variants of a saved face backbone, add them to the variants file",
    )
    parser.add_argument(
        "--fingerprint-config",
        default=str(FINGERPRINT_CONFIG),
        help="the fingerprint staged config (embed_fingerprint.py, or embed_fingerprint_scale.py "
        "with --fingerprint-workdir)",
    )
    parser.add_argument(
        "--fingerprint-workdir",
        help="a long fingerprint run's workdir (outside the tree): evaluate it instead of training",
    )
    parser.add_argument(
        "--fingerprint-model",
        metavar="MODEL_DIR",
        help="score a saved fingerprint backbone again by --fingerprint-config's suite (e.g. a "
        "finished run's <workdir>/model) and save it as the committed one",
    )
    parser.add_argument(
        "--fingerprint-checkpoint",
        action="store_true",
        help="with --fingerprint-workdir: score the running job's best checkpoint so far and "
        "append it to embedding_fingerprint_trend.json (the model and embedding.json stay)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    fingerprint_config = Path(args.fingerprint_config).resolve()
    if args.fingerprint_checkpoint:
        if not args.fingerprint_workdir:
            parser.error("--fingerprint-checkpoint needs --fingerprint-workdir.")
        record = fingerprint_job(
            Path(args.fingerprint_workdir), fingerprint_config, args.overrides, checkpoint=True
        )
        record["command"] = " ".join(shlex.quote(a) for a in sys.argv)
        old = json.loads(FINGERPRINT_TREND.read_text()) if FINGERPRINT_TREND.exists() else {}
        path = write_results(
            FINGERPRINT_TREND.stem, {"checkpoints": [*old.get("checkpoints", []), record]}
        )
        print_fingerprint(record)
        print(f"wrote {path}")
        return
    workdir = Path(args.workdir)
    face_config = Path(args.face_config).resolve()
    if args.face_variants:
        record = face_variants(Path(args.face_variants), face_config)
        old = json.loads(VARIANTS.read_text())["models"] if VARIANTS.exists() else []
        path = write_results(VARIANTS.stem, {"models": [*old, record]})
        rows = [
            [v, s, r["eer_pct"], r["frr_pct_at_far"]["1e-3"], r["identification_pct"]["5"]]
            for v, sets in record["variants"].items()
            for s, r in sets.items()
        ]
        print_table(["variant", "set", "EER %", "FRR@1e-3 %", "5-shot %"], rows)
        print(f"int8 flip embed: {record['int8_flip_embed']}\nwrote {path}")
        return
    if args.face_checkpoint:
        record = face_trend(Path(args.face_workdir), face_config)
        trend = json.loads(TREND.read_text())["checkpoints"] if TREND.exists() else []
        path = write_results(TREND.stem, {"checkpoints": [*trend, record]})
        orl, dev = record["orl"], record["dev"]
        print(
            f"{record['stage']} epoch {record['epoch']}: ORL 1/3/5-shot "
            f"{orl['identification_pct']} EER {orl['eer_pct']:.2f}%; dev "
            f"{dev['identification_pct']} EER {dev['eer_pct']:.2f}%  -> {path}"
        )
        return
    modalities = args.only or MODALITIES
    for modality in modalities:  # only the modalities this call runs: --only keeps the others
        if not args.resume and (workdir / modality).exists():
            shutil.rmtree(workdir / modality)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    for modality in modalities:
        if modality == "face":
            results[modality] = run_faces(
                workdir / modality,
                Path(args.face_workdir),
                args.overrides,
                resume=args.resume,
                face_config=face_config,
                face_model=Path(args.face_model) if args.face_model else None,
            )
        elif args.fingerprint_model:
            results[modality] = rescored_fingerprint(
                Path(args.fingerprint_model), fingerprint_config, args.overrides
            )
            results[modality]["ablation"] = job_ablation(results[modality])
        elif args.fingerprint_workdir:
            results[modality] = fingerprint_job(
                Path(args.fingerprint_workdir), fingerprint_config, args.overrides, checkpoint=False
            )
            results[modality]["ablation"] = job_ablation(results[modality])
        else:
            results[modality] = run_modality(
                modality, workdir / modality, args.overrides, resume=args.resume
            )
    results["wall_s"] = time.perf_counter() - started
    # Each modality says which invocation measured it (an --only run keeps the other's figures).
    command = " ".join(shlex.quote(a) for a in sys.argv)
    for modality in modalities:
        results[modality]["run"] = {"command": command, "bench_wall_s": results["wall_s"]}
    previous = RESULTS / "embedding.json"
    if args.only and previous.exists():  # keep the other modality's figures from its last run
        old = json.loads(previous.read_text())
        for modality in MODALITIES:
            if modality not in results and modality in old:
                results[modality] = old[modality]
    path = write_results("embedding", results)
    table(results)
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    run_main(main)
