"""``python -m devices``: the commands on a hand-written artifact, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import devices
from devices.__main__ import main
from devices.server.chains import write_chain


@pytest.fixture
def artifact(tmp_path: Path, mlp) -> Path:
    """An artifact directory as export writes it (the planner sizes model.tflite and counts its
    nodes: here a chain of 40 ADDs)."""
    out = tmp_path / "mlp"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"graph": mlp.to_dict()}))
    write_chain(out / "model.tflite", 40, "ADD")
    return out


def test_list(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("phone_cpu", "dsp", "mobile_gpu", "mcu", "host"):
        assert name in out


def test_plan_prints_every_scope(artifact: Path, capsys) -> None:
    assert main(["plan", "--artifact", str(artifact), "--profile", "phone_cpu"]) == 0
    out = capsys.readouterr().out
    assert "train_last_block" in out and "widest scope that fits: last_block" in out
    assert main(["plan", "--artifact", str(artifact), "--profile", "mcu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["signature"] for r in data["signatures"]} == {
        "embed",
        "train",
        "train_last_block",
        "get_weights",
    }


def test_energy_for_an_artifact_and_for_a_size(artifact: Path, capsys) -> None:
    assert main(["energy", "--artifact", str(artifact), "--signature", "embed", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 5 and all(r["energy_j"] > 0 for r in rows)
    assert (
        main(
            [
                "energy",
                "--weights-bytes",
                "100000",
                "--macs",
                "400000",
                "--bits",
                "8",
                "--profile",
                "mcu",
                "--profile",
                "dsp",
            ]
        )
        == 0
    )
    assert "mcu" in capsys.readouterr().out


def test_offload_prints_one_line(artifact: Path, capsys) -> None:
    args = [
        "offload",
        "--artifact",
        str(artifact),
        "--profile",
        "phone_cpu",
        "--connectivity",
        "offline",
        "--battery",
        "0.9",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("local: ") and "\n" not in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["plan", "--artifact", "/nonexistent", "--profile", "phone_cpu"],
            "not an artifact directory",
        ),
        (["plan", "--artifact", "{artifact}", "--profile", "toaster"], "unknown profile 'toaster'"),
        (["energy", "--weights-bytes", "1000"], "--weights-bytes N needs --macs N"),
        (["energy", "--artifact", "{artifact}", "--bits", "8"], "describe a --weights-bytes"),
        (["energy", "--weights-bytes", "9", "--macs", "9", "--signature", "embed"], "--artifact's"),
        (["energy", "--artifact", "{artifact}", "--signature", "fly"], "no signature 'fly'"),
        (
            [
                "offload",
                "--artifact",
                "{artifact}",
                "--profile",
                "mcu",
                "--connectivity",
                "offline",
                "--battery",
                "2",
            ],
            "battery_level 2.0",
        ),
        (["plan", "--artifact", "{bad}", "--profile", "mcu"], "graph.layers[0].op"),
        (["plan", "--artifact", "{artifact}", "--profile", "{bad}"], "bad is a directory; give a"),
        # refused before the probes are converted and timed (12 s and more)
        (["calibrate", "--speed", "--out", "{bad}/missing.json"], "profile file not found"),
    ],
)
def test_clean_errors(argv, says: str, artifact: Path, tmp_path: Path, mlp, capsys) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    data = mlp.to_dict()
    data["layers"][0]["op"] = "lstm"
    (bad / "manifest.json").write_text(json.dumps({"graph": data}))
    (bad / "model.tflite").write_bytes(b"")
    argv = [a.format(artifact=artifact, bad=bad) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["plan", "--profile", "mcu"], "--artifact"),
        (["energy"], "one of the arguments --artifact --weights-bytes is required"),
        (["energy", "--weights-bytes", "-1000", "--macs", "5"], "--weights-bytes: must be >= 0"),
        (["energy", "--weights-bytes", "1000", "--macs", "-5000"], "--macs: must be >= 0"),
        (["energy", "--weights-bytes", "1", "--macs", "1", "--bits", "0"], "--bits: must be >= 1"),
        (["energy", "--weights-bytes", "1", "--macs", "1", "--bits", "-3"], "--bits: must be >="),
        (
            ["energy", "--artifact", "a", "--weights-bytes", "1"],
            "--weights-bytes: not allowed with argument --artifact",
        ),
        (["offload", "--free-bytes", "-1"], "--free-bytes: must be >= 0"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], says: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_inference_energy_refuses_negative_sizes() -> None:
    profile = devices.load_profile("mcu")
    for kw in ({"weight_bytes": -1}, {"macs": -1}, {"activation_bytes": -1}, {"bits": 0}):
        args = {"weight_bytes": 10, "macs": 10, "bits": 8, **kw}
        with pytest.raises(ValueError, match="need sizes and counts >= 0 and bits >= 1"):
            devices.inference_energy(args.pop("weight_bytes"), args.pop("macs"), profile, **args)
