"""Profiles are data files: every shipped one validates; bad ones name the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices import ProfileError, load_profile, load_profiles, profile_names
from devices.profiles import PROFILE_DIR, horowitz_pj_per_op

REQUIRED = ("phone_cpu", "dsp", "mobile_gpu", "mcu", "host")


def test_the_five_device_classes_ship_and_validate() -> None:
    profiles = load_profiles()
    assert set(REQUIRED) <= set(profile_names())
    assert profiles["dsp"].precisions == ("int8",)
    assert "fp16" in profiles["mobile_gpu"].precisions
    assert profiles["mcu"].sram_bytes == 256 * 1024 and profiles["mcu"].flash_bytes == 1024 * 1024
    assert profiles["host"].measured  # calibrated on this machine, dated
    for p in profiles.values():
        assert all(s.strip() for s in p.sources.values())


@pytest.mark.parametrize("name", REQUIRED)
def test_energy_is_horowitz_scaled_as_the_profile_says(name: str) -> None:
    p = load_profile(name)
    for precision, pj in p.pj_per_op.items():
        assert pj == pytest.approx(horowitz_pj_per_op(precision) * p.energy_scale)
    assert p.sram_pj_per_byte == pytest.approx(5.0 / 4 * p.energy_scale)
    assert p.dram_pj_per_byte == pytest.approx(640.0 / 4 * p.energy_scale)


def _write(tmp_path: Path, edit) -> Path:
    data = json.loads((PROFILE_DIR / "phone_cpu.json").read_text())
    edit(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (lambda d: d.pop("memory_bytes"), "memory_bytes", "missing"),
        (lambda d: d["sram_bytes"].update(value=-1), "sram_bytes", ">= 0"),
        (
            lambda d: d["dram_bandwidth_bytes_per_s"].update(value=0),
            "dram_bandwidth_bytes_per_s",
            "> 0",
        ),
        (lambda d: d["peak_ops_per_s"].pop("int8"), "peak_ops_per_s.int8", "missing"),
        (lambda d: d["peak_ops_per_s"]["fp32"].update(value=-4.0), "peak_ops_per_s.fp32", "> 0"),
        (lambda d: d["battery_joules"].update(source=""), "battery_joules", "source"),
        (
            lambda d: d["energy"]["pj_per_op"]["fp16"].update(value="cheap"),
            "energy.pj_per_op.fp16",
            "number",
        ),
        (lambda d: d["energy"].pop("dram_pj_per_byte"), "energy.dram_pj_per_byte", "missing"),
        (lambda d: d["precisions"].update(value=["fp64"]), "precisions", "fp32"),
        (lambda d: d.update(runtime=3), "runtime", "host"),
        (lambda d: d.pop("format"), "format", "pocketfit-profile/1"),
    ],
)
def test_bad_profiles_name_file_and_field(tmp_path: Path, edit, field: str, problem: str) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    message = str(err.value)
    assert str(path) in message and f"'{field}'" in message and problem in message


def test_runtime_fields_are_validated_in_place(tmp_path: Path) -> None:
    data = json.loads((PROFILE_DIR / "mcu.json").read_text())
    data["runtime"]["weight_copies"]["value"] = -1
    path = tmp_path / "mcu.json"
    path.write_text(json.dumps(data))
    with pytest.raises(
        ProfileError, match=r"mcu.json: field 'runtime.weight_copies': must be >= 0"
    ):
        load_profile(path)


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile 'toaster'; known: .*phone_cpu"):
        load_profile("toaster")


def test_unreadable_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(ProfileError, match=r"x\.json: not valid JSON"):
        load_profile(path)
