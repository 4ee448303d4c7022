"""``python -m export``: the table, the JSON, the evaluation, clean errors without tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

import export
from export.__main__ import main
from export.bundle import Coded

ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "notebooks" / "results" / "artifacts"


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> tuple[Path, object]:
    """A small LeNet-300 (32-16 hidden) bundle with its public key beside it."""
    folder = tmp_path_factory.mktemp("bundles")
    key = ed25519.Ed25519PrivateKey.generate()
    rng = np.random.default_rng(0)
    tensors = {}
    for i, (a, b) in enumerate([(784, 32), (32, 16), (16, 10)], start=1):
        book = np.concatenate([[0.0], np.linspace(-0.3, 0.3, 15)]).astype(np.float32)
        codes = rng.integers(1, 16, (a, b)) * (rng.random((a, b)) < 0.2)
        tensors[f"fc{i}/kernel"] = Coded(book, codes)
        tensors[f"fc{i}/bias"] = np.zeros(b, np.float32)
    data = export.build_bundle(
        tensors, model="lenet300", options={"hidden": [32, 16]}, private_key=key
    )
    path = export.write_bundle(folder / "tiny.pfb", data)
    export.bundle.write_public_key(key.public_key(), folder / "signing.pub")
    return path, key


def test_inspect_prints_the_table_and_json(signed, capsys) -> None:
    path, _ = signed
    pub = str(path.parent / "signing.pub")
    assert main(["inspect", str(path), "--key", pub]) == 0
    out = capsys.readouterr().out
    assert "fc1" in out and "kept %" in out and "stages:" in out
    assert main(["inspect", str(path), "--key", pub, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["bytes"] == path.stat().st_size
    assert [r["layer"] for r in info["layers"]] == ["fc1", "fc2", "fc3"]
    assert set(info["stages"]) == {"pruned", "quantized", "huffman"}


@pytest.mark.data
def test_evaluate_prints_one_json_object(signed, mnist_dir, capsys) -> None:
    path, _ = signed
    pub = str(path.parent / "signing.pub")
    assert main(["evaluate", str(path), "--dataset", "mnist", "--key", pub, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"test_error_pct", "ratio", "bytes", "reference_bytes"} <= set(result)
    assert 0.0 <= result["test_error_pct"] <= 100.0 and result["examples"] == 10_000
    assert result["ratio"] == pytest.approx(result["reference_bytes"] / result["bytes"])


def _lenet300(folder: Path, name: str, classes: int, options: dict) -> Path:
    """A signed LeNet-300 (32-16 hidden) bundle of ``classes`` outputs, at ``folder/name``."""
    key = ed25519.Ed25519PrivateKey.generate()
    export.bundle.write_public_key(key.public_key(), folder / f"{name}.pub")
    tensors = {}
    for i, (a, b) in enumerate([(784, 32), (32, 16), (16, classes)], start=1):
        tensors[f"fc{i}/kernel"] = np.zeros((a, b), np.float32)
        tensors[f"fc{i}/bias"] = np.zeros(b, np.float32)
    data = export.build_bundle(tensors, model="lenet300", options=options, private_key=key)
    return export.write_bundle(folder / f"{name}.pfb", data)


def test_evaluate_refuses_what_is_not_a_classifier_of_the_dataset(tmp_path: Path, capsys) -> None:
    """Refused from the shapes, before the test split is read: no "error 100.00%" (exit 0)."""
    pub = str(ARTIFACTS / "signing.pub")
    shutil.copy(ARTIFACTS / "fingerprint" / "backbone.pfb", tmp_path / "backbone.pfb")
    shutil.copy(ARTIFACTS / "face.pfb", tmp_path / "face.pfb")
    twelve = _lenet300(tmp_path, "twelve", 12, {"hidden": [32, 16], "num_classes": 12})
    mislabelled = _lenet300(tmp_path, "mislabelled", 12, {"hidden": [32, 16]})
    cases = [
        (tmp_path / "backbone.pfb", pub, "its embednet gives 128 outputs an image, not 10 class"),
        (tmp_path / "face.pfb", pub, "is an artifact's download bundle (pocketfit-download/1)"),
        (twelve, str(tmp_path / "twelve.pub"), "gives 12 outputs an image, not 10 class scores"),
        (mislabelled, str(tmp_path / "mislabelled.pub"), "does not take mnist's 28x28x1 images"),
    ]
    for path, key, says in cases:
        assert main(["evaluate", str(path), "--dataset", "mnist", "--key", key]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and says in err and err.count("\n") == 1, err
        assert "not a mnist classifier" in err


def test_tampered_bundle_is_a_clean_error(signed, tmp_path: Path, capsys) -> None:
    path, _ = signed
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x04
    bad = tmp_path / "bad.pfb"
    bad.write_bytes(bytes(data))
    code = main(["inspect", str(bad), "--key", str(path.parent / "signing.pub")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "modified after signing" in err


def test_a_key_beside_the_bundle_is_never_trusted(signed, capsys) -> None:
    """signing.pub sits beside the bundle, yet without --key nothing is verified or decoded."""
    path, _ = signed
    assert (path.parent / "signing.pub").is_file()
    for command in (["inspect", str(path)], ["evaluate", str(path), "--dataset", "mnist"]):
        with pytest.raises(SystemExit) as exit_:
            main(command)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "the following arguments are required: --key" in err
        assert "fc1" not in err
    with pytest.raises(SystemExit):
        main(["inspect", "-h"])
    assert "[--key KEY]" not in capsys.readouterr().out  # shown as required, not optional
    with pytest.raises(export.BundleError, match="pass --key"):  # the library's own refusal
        export.read_bundle(path)


def test_a_directory_is_named_as_one(signed, tmp_path: Path, capsys) -> None:
    path, _ = signed
    pub = str(path.parent / "signing.pub")
    cases = [
        (["inspect", str(tmp_path), "--key", pub], f"{tmp_path} is a directory; give a bundle"),
        (["inspect", str(path), "--key", str(tmp_path)], f"public key {tmp_path} is a directory"),
    ]
    for argv, says in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and says in err and "not found" not in err


def test_keygen_checks_the_public_path_before_writing_the_private_key(tmp_path: Path, capsys):
    private = tmp_path / "k.key"
    args = ["keygen", "--private", str(private), "--public", str(tmp_path)]
    assert main(args) == 2
    assert f"public key path {tmp_path} is a directory" in capsys.readouterr().err
    assert not private.exists()  # so the corrected re-run is not refused
    assert main([*args[:-1], str(tmp_path / "k.pub")]) == 0


def test_a_public_key_given_as_the_signing_key_is_named_as_one(tmp_path: Path) -> None:
    from export.bundle.signing import load_private_key

    export.generate_key(tmp_path / "k.key", tmp_path / "k.pub")
    (tmp_path / "k.pub").chmod(0o644)
    with pytest.raises(export.BundleError, match=r"is a public key \(the public half\)") as err:
        load_private_key(tmp_path / "k.pub")
    assert "chmod" not in str(err.value)
    with pytest.raises(export.BundleError, match="is a directory"):
        load_private_key(tmp_path)


def test_wrong_key_and_missing_files_are_clean_errors(signed, tmp_path: Path, capsys) -> None:
    path, _ = signed
    other = tmp_path / "other.pub"
    export.bundle.write_public_key(ed25519.Ed25519PrivateKey.generate().public_key(), other)
    assert main(["inspect", str(path), "--key", str(other)]) == 2
    assert "signed by another key" in capsys.readouterr().err
    nope = str(tmp_path / "nope.pfb")
    assert main(["evaluate", nope, "--dataset", "mnist", "--key", str(other)]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "empty.pfb").write_bytes(b"")
    assert main(["inspect", str(tmp_path / "empty.pfb"), "--key", str(other)]) == 2
    assert "not a pocketfit bundle" in capsys.readouterr().err


def test_keygen_then_refuse_to_overwrite(tmp_path: Path, capsys) -> None:
    args = ["keygen", "--private", str(tmp_path / "k.key"), "--public", str(tmp_path / "k.pub")]
    assert main(args) == 0
    assert "key id" in capsys.readouterr().out
    assert main(args) == 2
    assert "not overwriting" in capsys.readouterr().err


def test_the_module_runs_without_tracebacks(signed, tmp_path: Path) -> None:
    path, _ = signed
    truncated = tmp_path / "cut.pfb"
    truncated.write_bytes(path.read_bytes()[:-7])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "export",
            "inspect",
            str(truncated),
            "--key",
            str(path.parent / "signing.pub"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert run.returncode == 2 and "truncated" in run.stderr and "Traceback" not in run.stderr


def test_importing_export_loads_no_server_frameworks() -> None:
    code = (
        "import sys, export, export.bundle\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jax', 'jaxlib', 'flax', 'optax', 'tensorflow', 'pretrain'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_build_whitening_follows_the_dataset_unless_told() -> None:
    from export.__main__ import _parser

    def whiten(*flags: str) -> object:
        return _parser().parse_args(["build", "--backbone", "m", "--out", "o", *flags]).whiten

    assert whiten() is None  # the training dataset's development choice
    assert whiten("--whiten") is True and whiten("--no-whiten") is False
    with pytest.raises(SystemExit):
        whiten("--whiten", "--no-whiten")
