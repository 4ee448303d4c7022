"""``python -m personalize``: the commands over the same Device, exit codes, clear errors."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from devices.preprocess import PreprocessSpec
from personalize import Device
from personalize.cli import ERROR, OK, REJECTED, main

ROOT = Path(__file__).resolve().parents[2]


def _args(art: dict[str, Any], store: Path, command: str, *rest: str) -> list[str]:
    return [
        command,
        "--artifact",
        str(art["dir"]),
        "--store",
        str(store),
        "--key",
        str(art["pub"]),
        *rest,
    ]


def _png(path: Path, image: np.ndarray) -> Path:
    Image.fromarray((image[..., 0] * 255).round().astype(np.uint8)).save(path)
    return path


def test_enroll_verify_identify_list_remove(toy_artifact, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    batch = tmp_path / "owner.npy"
    np.save(batch, toy_artifact["owner"][:3])
    pngs = [_png(tmp_path / f"o{i}.png", x) for i, x in enumerate(toy_artifact["owner"][3:])]
    code = main(
        _args(
            toy_artifact,
            store,
            "enroll",
            "--user",
            "owner",
            "--scope",
            "head",
            "--target-far",
            "0.01",
            "--json",
            str(batch),
            *map(str, pngs),
        )
    )
    report = json.loads(capsys.readouterr().out)
    assert code == OK and report["samples"] == 5 and report["scope"] == "head"
    dev = Device(toy_artifact["dir"], store, trusted_key=toy_artifact["pub"])
    for image in (toy_artifact["owner_test"][0], toy_artifact["impostors"][0]):
        probe = _png(tmp_path / "probe.png", image)
        expected = dev.verify("owner", np.asarray(Image.open(probe)))
        code = main(_args(toy_artifact, store, "verify", "--user", "owner", str(probe)))
        out = capsys.readouterr().out
        assert code == (OK if expected.accept else REJECTED)
        assert out.startswith("ACCEPT" if expected.accept else "REJECT")
        assert f"threshold {expected.threshold:.4f}" in out
    np.save(tmp_path / "probe.npy", toy_artifact["owner_test"][1])
    assert main(_args(toy_artifact, store, "identify", str(tmp_path / "probe.npy"))) == OK
    assert capsys.readouterr().out.startswith("owner: score")
    assert main(["list", "--store", str(store)]) == OK
    assert capsys.readouterr().out.strip() == "owner"
    assert main(["remove", "--store", str(store), "--user", "owner"]) == OK
    assert main(["list", "--store", str(store), "--json"]) == OK
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"users": []}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("blank", "sample 0: blank or constant"),
        ("missing", "no such file"),
        ("corrupt", "cannot read"),
        ("unknown user", "no enrolled user 'nobody'"),
        ("no store", "no user store"),
    ],
)
def test_errors_exit_2_with_the_reason(toy_artifact, tmp_path: Path, capsys, case, message) -> None:
    store = tmp_path / "store"
    blank = tmp_path / "blank.npy"
    np.save(blank, np.zeros((2, 28, 28), np.uint8))
    corrupt = tmp_path / "x.png"
    corrupt.write_bytes(b"\x89PNG not really")
    argv = {
        "blank": _args(toy_artifact, store, "enroll", "--user", "u", str(blank)),
        "missing": _args(toy_artifact, store, "enroll", "--user", "u", str(tmp_path / "no.png")),
        "corrupt": _args(toy_artifact, store, "enroll", "--user", "u", str(corrupt)),
        "unknown user": _args(toy_artifact, store, "verify", "--user", "nobody", str(blank)),
        "no store": ["list", "--store", str(tmp_path / "nowhere")],
    }[case]
    if case == "unknown user":
        np.save(blank, toy_artifact["owner"][0])
    assert main(argv) == ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_module_entry_point(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "personalize", "list", "--store", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == ERROR and "no user store" in result.stderr


def test_verify_adapts_unless_told_not_to(toy_artifact, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    np.save(tmp_path / "owner.npy", toy_artifact["owner"])
    enroll = ["enroll", "--user", "owner", "--scope", "head", "--target-far", "0.01"]
    assert main(_args(toy_artifact, store, *enroll, str(tmp_path / "owner.npy"))) == OK
    buffers = list((store / "continual").glob("*.buf"))
    assert len(buffers) == 1  # the enrollment's embeddings, encrypted
    record = next((store / "users").glob("*.rec"))
    before = record.read_bytes()
    np.save(tmp_path / "probe.npy", toy_artifact["owner_test"][0])
    off = _args(toy_artifact, store, "verify", "--user", "owner", "--no-adapt", "--json")
    assert main([*off, str(tmp_path / "probe.npy")]) == OK
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["adapt"] == "off"
    assert record.read_bytes() == before
    on = _args(toy_artifact, store, "verify", "--user", "owner")
    assert main([*on, str(tmp_path / "probe.npy")]) == OK
    assert capsys.readouterr().out.strip().endswith("continual: below_margin") or (
        record.read_bytes() != before
    )
    assert main(["remove", "--store", str(store), "--user", "owner"]) == OK
    assert not buffers[0].exists()


def test_enroll_train_and_no_train_choose_the_flow(toy_artifact, tmp_path: Path, capsys) -> None:
    """``--train`` runs SGD in the widest scope that fits, ``--no-train`` imprints; they and
    ``--scope`` exclude each other (argparse's exit 2 and usage, not a traceback)."""
    batch = tmp_path / "owner.npy"
    np.save(batch, toy_artifact["owner"][:5])
    reports = {}
    for flag in ("--train", "--no-train"):
        store = tmp_path / flag.strip("-")
        args = _args(toy_artifact, store, "enroll", "--user", "o", flag, "--json", str(batch))
        assert main(args) == OK
        reports[flag] = json.loads(capsys.readouterr().out)
    assert reports["--train"]["steps"] >= 1 and reports["--train"]["scope"] != "none"
    assert reports["--no-train"]["steps"] == 0 and reports["--no-train"]["scope"] == "none"
    with pytest.raises(SystemExit) as exit_:
        main(_args(toy_artifact, tmp_path / "s", "enroll", "--user", "o", "--train", "--no-train"))
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_dpi_brings_another_sensors_prints_to_the_artifacts(
    toy_artifact, tmp_path: Path, capsys, monkeypatch
) -> None:
    """``--dpi 1000``: a capture twice the size (each pixel a 2 x 2 block) enrolls and verifies
    as the 500 dpi capture does; a non-print artifact, or a resolution that is not one, is
    refused with the reason."""
    store = tmp_path / "store"
    owner = np.rint(np.clip(toy_artifact["owner"][:5, ..., 0], 0, 1) * 255).astype(np.uint8)
    probe = np.rint(np.clip(toy_artifact["owner_test"][0, ..., 0], 0, 1) * 255).astype(np.uint8)
    double = lambda x: np.repeat(np.repeat(x, 2, axis=-2), 2, axis=-1)  # noqa: E731
    for name, images in {"plain": owner, "double": double(owner)}.items():
        np.save(tmp_path / f"{name}.npy", images)
        np.save(tmp_path / f"{name}_probe.npy", probe if name == "plain" else double(probe))
    refused = _args(toy_artifact, store, "enroll", "--user", "o", "--dpi", "1000")
    assert main([*refused, str(tmp_path / "double.npy")]) == ERROR
    assert "(1000.0 dpi) is a fingerprint sensor's; this artifact is digit" in (
        capsys.readouterr().err
    )

    read = PreprocessSpec.from_dict

    def as_prints(data: Any) -> PreprocessSpec:  # the toy's digits, taken as prints
        return dataclasses.replace(read(data), modality="fingerprint")

    monkeypatch.setattr(PreprocessSpec, "from_dict", staticmethod(as_prints))
    scores = {}
    for name, dpi in (("plain", []), ("double", ["--dpi", "1000"])):
        enroll = _args(toy_artifact, store, "enroll", "--user", name, "--no-train", *dpi)
        assert main([*enroll, str(tmp_path / f"{name}.npy")]) == OK
        verify = _args(toy_artifact, store, "verify", "--user", name, "--no-adapt", "--json", *dpi)
        main([*verify, str(tmp_path / f"{name}_probe.npy")])
        scores[name] = json.loads(capsys.readouterr().out.splitlines()[-1])["score"]
    assert scores["double"] == pytest.approx(scores["plain"], abs=1e-6)
    # ... and it is applied: the 500 dpi probe said to be 1000 dpi shrinks to 14 x 14 first
    halved = _args(toy_artifact, store, "verify", "--user", "double", "--dpi", "1000")
    assert main([*halved, str(tmp_path / "plain_probe.npy")]) == ERROR
    assert "14x14 pixels at 500 dpi (captured at 1000), smaller than the model input" in (
        capsys.readouterr().err
    )
    # a user enrolled at 500 dpi, verified as if the sensor were 1000 dpi: refused, saying why
    other = _args(toy_artifact, store, "verify", "--user", "plain", "--dpi", "1000")
    assert main([*other, str(tmp_path / "plain_probe.npy")]) == ERROR
    err = capsys.readouterr().err
    assert "enrolled from captures at 500 dpi; these are taken as 1000 dpi (--dpi)" in err
    assert "Give --dpi 500, or enroll again." in err and "sensor_dpi" not in err
    bad = _args(toy_artifact, store, "verify", "--user", "plain", "--dpi", "0")
    assert main([*bad, str(tmp_path / "plain_probe.npy")]) == ERROR
    assert "--dpi 0: a sensor resolution must be a positive number of dpi, got 0.0" in (
        capsys.readouterr().err
    )
    # a resolution no sensor has (dpi 1 once asked numpy for 270 GiB): one line, naming --dpi
    for dpi in ("1", "5000"):
        tiny = _args(toy_artifact, store, "enroll", "--user", "t", "--no-train", "--dpi", dpi)
        assert main([*tiny, str(tmp_path / "plain.npy")]) == ERROR
        err = capsys.readouterr().err
        assert err.startswith(f"error: --dpi {dpi}: a sensor resolution of {dpi} dpi is outside")
        assert len(err.strip().splitlines()) == 1


def _strict_json(text: str) -> Any:
    """``text`` parsed as JSON proper: Infinity and NaN are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _tree(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under ``folder`` with its mtime and contents (what a write would change)."""
    return {
        str(p): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
        for p in [folder, *folder.rglob("*")]
    }


def test_read_only_commands_create_nothing(toy_artifact, tmp_path: Path, capsys) -> None:
    """identify, verify --no-adapt and list on a folder with no store: "no user store here",
    nothing created; on an existing store they change nothing, and JSON is JSON (no
    -Infinity when no record was scored)."""
    np.save(tmp_path / "probe.npy", toy_artifact["owner_test"][0])
    probe, keys = str(tmp_path / "probe.npy"), ["--keys", str(tmp_path / "keys")]
    new = tmp_path / "new"
    for argv in (
        _args(toy_artifact, new, "identify", *keys, "--json", probe),
        _args(toy_artifact, new, "verify", "--user", "o", "--no-adapt", *keys, probe),
        ["list", "--store", str(new), *keys],
    ):
        assert main(argv) == ERROR
        assert "no user store here" in capsys.readouterr().err
        assert not new.exists() and not (tmp_path / "keys").exists()
    store = tmp_path / "store"
    assert main(_args(toy_artifact, store, "remove", "--user", "x", *keys)) == ERROR  # none yet
    from personalize import RecordStore

    RecordStore(store, keys=tmp_path / "keys")  # an empty store
    before = _tree(tmp_path)
    assert main(_args(toy_artifact, store, "identify", *keys, "--json", probe)) == REJECTED
    assert _strict_json(capsys.readouterr().out) == {"user": None, "score": None}
    assert main(_args(toy_artifact, store, "identify", *keys, probe)) == REJECTED
    assert capsys.readouterr().out.strip() == "nobody (no record scored)"
    assert _tree(tmp_path) == before


def test_list_and_identify_warn_about_records_they_cannot_read(
    toy_artifact, tmp_path: Path, capsys
) -> None:
    """A tampered record, a rolled-back one and one of another artifact: list and identify
    name each on stderr (one line each) and go on with the others; verify of one is an error."""
    store, keys = tmp_path / "store", ["--keys", str(tmp_path / "keys")]
    np.save(tmp_path / "owner.npy", toy_artifact["owner"])
    np.save(tmp_path / "other.npy", toy_artifact["impostors"][:5])
    np.save(tmp_path / "probe.npy", toy_artifact["owner_test"][0])
    enroll = ["enroll", "--no-train", "--no-adapt", "--target-far", "0.01", *keys, "--user"]
    for user, images in (("owner", "owner"), ("tampered", "other"), ("rolled", "other")):
        assert (
            main(_args(toy_artifact, store, *enroll, user, str(tmp_path / f"{images}.npy"))) == OK
        )
    plain = {**toy_artifact, "dir": toy_artifact["plain"]}  # another artifact (no features)
    assert main(_args(plain, store, *enroll, "elsewhere", str(tmp_path / "other.npy"))) == OK
    capsys.readouterr()
    from personalize import RecordStore

    ro = RecordStore(store, keys=tmp_path / "keys", read_only=True)
    rolled = ro.path("rolled")
    old = rolled.read_bytes()
    assert main(_args(toy_artifact, store, *enroll, "rolled", str(tmp_path / "other.npy"))) == OK
    rolled.write_bytes(old)  # an authentic older record put back
    data = bytearray(ro.path("tampered").read_bytes())
    data[40] ^= 1
    ro.path("tampered").write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["list", "--store", str(store), *keys]) == OK
    out, err = capsys.readouterr()
    assert out.split() == ["elsewhere", "owner"]
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(x.startswith("warning: skipped: ") for x in lines)
    assert "fails authentication" in err and "rollback" in err
    identify = _args(toy_artifact, store, "identify", *keys, "--json", str(tmp_path / "probe.npy"))
    assert main(identify) == OK
    out, err = capsys.readouterr()
    assert _strict_json(out)["user"] == "owner"
    lines = err.strip().splitlines()
    assert len(lines) == 3 and "'elsewhere' was enrolled with another artifact" in err
    for user in ("tampered", "rolled"):
        verify = _args(toy_artifact, store, "verify", "--user", user, "--no-adapt", *keys)
        assert main([*verify, str(tmp_path / "probe.npy")]) == ERROR
        assert "refusing it" in capsys.readouterr().err


def _read_only_mount_works(folder: Path) -> bool:
    """Whether this process may bind-mount ``folder`` read-only in a new mount namespace."""
    if shutil.which("unshare") is None:
        return False
    ro = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} {folder}"
    done = subprocess.run(["unshare", "-m", "sh", "-c", ro], capture_output=True)
    return done.returncode == 0


def test_a_store_on_read_only_media_is_read(toy_artifact, tmp_path: Path) -> None:
    """list, identify and verify --no-adapt on a store mounted read-only (a real read-only
    bind mount in a private mount namespace; skipped where this process may not mount)."""
    store, keys = tmp_path / "store", ["--keys", str(tmp_path / "keys")]
    np.save(tmp_path / "owner.npy", toy_artifact["owner"])
    np.save(tmp_path / "probe.npy", toy_artifact["owner_test"][0])
    enroll = ["enroll", "--user", "owner", "--no-train", "--target-far", "0.01", *keys]
    assert main(_args(toy_artifact, store, *enroll, str(tmp_path / "owner.npy"))) == OK
    if not _read_only_mount_works(store):
        pytest.skip("no read-only bind mount here (unshare -m and mount need privileges)")
    probe = str(tmp_path / "probe.npy")
    commands = [
        ["list", "--store", str(store), *keys],
        _args(toy_artifact, store, "identify", *keys, probe),
        _args(toy_artifact, store, "verify", "--user", "owner", "--no-adapt", *keys, probe),
    ]
    adapting = _args(toy_artifact, store, "verify", "--user", "owner", *keys, probe)
    shell = [
        " ".join(shlex.quote(a) for a in [sys.executable, "-m", "personalize", *argv])
        for argv in [*commands, adapting]
    ]
    run = " && ".join(shell[:-1]) + f" && {{ {shell[-1]}; echo rc=$?; }}"
    ro = f"mount --bind {store} {store} && mount -o remount,ro,bind {store} {store}"
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"{ro} && {run}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    listed, identified, verified, adapted = done.stdout.splitlines()
    assert listed == "owner" and identified.startswith("owner: score")
    assert verified.startswith("ACCEPT owner")
    # adapting writes the store: refused in one line that names the way to read it
    assert adapted == "rc=2" and "read-only media: verify --no-adapt" in done.stderr


def test_enrolling_again_says_the_record_was_replaced(toy_artifact, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    np.save(tmp_path / "owner.npy", toy_artifact["owner"])
    enroll = _args(toy_artifact, store, "enroll", "--user", "o", "--no-train", "--no-adapt")
    assert main([*enroll, "--json", str(tmp_path / "owner.npy")]) == OK
    assert json.loads(capsys.readouterr().out)["replaced"] is False
    assert main([*enroll, str(tmp_path / "owner.npy")]) == OK
    assert capsys.readouterr().out.startswith(
        "enrolled o (its previous record replaced): 5 samples"
    )
    assert main([*enroll, "--user", "p", str(tmp_path / "owner.npy")]) == OK
    assert capsys.readouterr().out.startswith("enrolled p: 5 samples")
