"""The offload service's parts that need no artifact: tokens, rate limits, the wire format,
the signed reply's checks and the CLI's token issuing."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from export.__main__ import main
from export.bundle import generate_key
from export.serve import RateLimiter, TokenError, Tokens, issue_token
from personalize.offload import OffloadError, canonical, decode_array, encode_array, read_reply


def test_tokens_are_hashed_at_rest_and_replaced_per_device(tmp_path: Path) -> None:
    file = tmp_path / "tokens.json"
    first = issue_token(file, "phone-1", "acme")
    second = issue_token(file, "phone-2", "acme")
    tokens = Tokens(file)
    assert tokens.lookup(first).device == "phone-1" and tokens.lookup(second).tenant == "acme"
    assert tokens.lookup("nope") is None and tokens.lookup("") is None
    assert first not in file.read_text() and file.stat().st_mode & 0o777 == 0o600
    renewed = issue_token(file, "phone-1", "acme")
    tokens = Tokens(file)
    assert len(tokens) == 2 and tokens.lookup(first) is None and tokens.lookup(renewed)


@pytest.mark.parametrize("device", ["", "a b", "../x", "x" * 65])
def test_bad_device_names_are_refused(tmp_path: Path, device: str) -> None:
    with pytest.raises(TokenError, match="device name"):
        issue_token(tmp_path / "t.json", device, "acme")


def test_unreadable_tokens_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="not found; issue one"):
        Tokens(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"format": "x", "devices": []}')
    with pytest.raises(TokenError, match="not a readable tokens file"):
        Tokens(tmp_path / "bad.json")


def test_rate_limiter_buckets() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=0.0) == pytest.approx(0.5)
    assert limiter.take("b", now=0.0) == 0.0  # per key
    assert limiter.take("a", now=0.6) == 0.0  # refilled at 2/s
    with pytest.raises(ValueError):
        RateLimiter(0.0, 1)


def test_wire_arrays_round_trip_and_refuse_malformed() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(decode_array(json.loads(json.dumps(encode_array(x))), "x"), x)
    bad = [
        {"shape": [3], "data": "AAAA"},  # 3 bytes for 3 values
        {"shape": [-1], "data": ""},
        {"shape": [1], "data": "!!"},
        {"shape": [2**13, 2**12], "data": ""},  # over the limit before decoding
        {"shape": [1], "data": base64.b64encode(np.float32(np.nan).tobytes()).decode()},
        [1, 2],
    ]
    for value in bad:
        with pytest.raises(ValueError):
            decode_array(value, "x", max_values=2**24)


def _reply(key: object, payload: dict[str, object]) -> bytes:
    from devices.trust import key_id

    message = canonical(payload)
    signature = key_id(key.public_key()) + key.sign(message)  # type: ignore[attr-defined]
    return canonical(
        {"job": "j", "payload": base64.b64encode(message).decode(), "signature": signature.hex()}
    )


def test_a_reply_is_checked_signature_first_then_what_it_answers(tmp_path: Path) -> None:
    key = generate_key(tmp_path / "k", tmp_path / "k.pub")
    other = generate_key(tmp_path / "o", tmp_path / "o.pub")
    request = b'{"a": 1}'
    payload = {
        "format": "pocketfit-offload/1",
        "job": "j",
        "artifact": "art",
        "scope": "head",
        "request_sha256": hashlib.sha256(request).hexdigest(),
        "weights": {"head__kernel": encode_array(np.ones((2, 3)))},
        "threshold": {
            "threshold": 0.5,
            "method": "m",
            "impostors": 9,
            "tail": 0,
            "xi": 0.0,
            "sigma": 0.0,
            "u": 0.0,
        },
        "steps": 4,
    }
    remote = read_reply(
        _reply(key, payload), key.public_key(), request=request, artifact_id="art", scope="head"
    )
    assert remote.fit.threshold == 0.5 and remote.weights["head__kernel"].shape == (2, 3)
    cases = [
        (_reply(other, payload), "bad signature: offload reply: signed by another key"),
        (_reply(key, payload).replace(b'"job":"j"', b'"job":"k"'), None),  # outer job: not signed
        (_reply(key, payload)[:-5], "bad reply"),
    ]
    for reply, reason in cases:
        if reason is None:
            read_reply(reply, key.public_key(), request=request, artifact_id="art", scope="head")
            continue
        with pytest.raises(OffloadError, match=reason):
            read_reply(reply, key.public_key(), request=request, artifact_id="art", scope="head")
    with pytest.raises(OffloadError, match="another request"):
        read_reply(
            _reply(key, payload), key.public_key(), request=b"{}", artifact_id="art", scope="head"
        )
    with pytest.raises(OffloadError, match="for artifact art, scope head"):
        read_reply(
            _reply(key, payload),
            key.public_key(),
            request=request,
            artifact_id="art",
            scope="last_block",
        )
    # A flipped byte inside the signed payload.
    outer = json.loads(_reply(key, payload))
    message = bytearray(base64.b64decode(outer["payload"]))
    message[10] ^= 1
    outer["payload"] = base64.b64encode(bytes(message)).decode()
    with pytest.raises(OffloadError, match=r"bad signature: .*modified after signing"):
        read_reply(
            canonical(outer), key.public_key(), request=request, artifact_id="art", scope="head"
        )


def test_cli_issues_tokens_and_refuses_bad_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "tokens.json"
    assert main(["serve", "--tokens", str(file), "--issue", "phone", "--tenant", "acme"]) == 0
    token = capsys.readouterr().out.strip()
    assert Tokens(file).lookup(token).device == "phone"
    assert main(["serve", "--tokens", str(file), "--issue", "phone"]) == 2
    assert "--issue needs --tenant" in capsys.readouterr().err
    assert main(["serve", "--tokens", str(file)]) == 2
    assert "serve needs --artifacts and --key" in capsys.readouterr().err
    assert (
        main(
            [
                "serve",
                "--tokens",
                str(file),
                "--artifacts",
                str(tmp_path),
                "--key",
                str(tmp_path / "none"),
            ]
        )
        == 2
    )
    assert "not found" in capsys.readouterr().err
