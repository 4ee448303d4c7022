"""The device's parsers under fuzzing: artifacts, the model, records and captures load or are
refused with the project's own errors, never another exception, a hang or a crash."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.contract import ArtifactError
from devices.fuzz import fuzz
from personalize.artifact import parse_manifest
from personalize.errors import StoreError
from personalize.store import decode_record

TARGETS = [
    ("artifact_manifest", 150),
    ("artifact_background", 150),
    ("artifact_features", 150),
    ("artifact_features_body", 150),
    ("artifact_signature", 100),
    ("litert_model", 300),
    ("record_file", 200),
    ("record_plaintext", 300),
    ("continual_file", 200),
    ("continual_plaintext", 300),
    ("image_file", 300),
]


@pytest.mark.parametrize(("name", "inputs"), TARGETS)
def test_a_slice_of_the_fuzz_bench_finds_nothing(name: str, inputs: int) -> None:
    report = fuzz("personalize.fuzz:targets", name, inputs=inputs, seed=1)
    assert report.unexpected == 0, report.examples
    assert report.refused > 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(JSON, st.binary(max_size=40))
def test_any_signed_manifest_parses_or_is_refused(value, junk: bytes) -> None:
    for text in (json.dumps(value).encode(), junk):
        with contextlib.suppress(ArtifactError):
            parse_manifest(text)


def test_a_manifest_naming_a_file_outside_the_artifact_is_refused() -> None:
    entry = {"bytes": 1, "sha256": "0" * 64}
    files = {"model.tflite": entry, "background.npy": entry}
    for name in ("../../etc/passwd", "sub/model.tflite", ".."):
        text = json.dumps({"format": "pocketfit-artifact/1", "files": {**files, name: entry}})
        with pytest.raises(ArtifactError, match="plain file name"):
            parse_manifest(text.encode())


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_any_authentic_plaintext_is_a_record_or_refused(plain: bytes) -> None:
    with contextlib.suppress(StoreError):
        decode_record(plain)
