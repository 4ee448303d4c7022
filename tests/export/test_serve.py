"""The offload service's parts that need no artifact: tokens, rate limits, the wire format,
the signed reply's checks and the CLI's token issuing and argument checks; and, on a folder of
one committed manifest, a running service following its tokens file."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from export.__main__ import main
from export.bundle import generate_key
from export.serve import (
    Limits,
    RateLimiter,
    ServeConfig,
    TokenError,
    Tokens,
    issue_token,
    self_signed,
    serve_in_thread,
)
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
    with pytest.raises(TokenError, match="is a directory; give the file's path"):
        Tokens(tmp_path)
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


ARTIFACTS = Path(__file__).parents[2] / "notebooks" / "results" / "artifacts"


def _served(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of one artifact as the service lists it (its manifest only: no job is run),
    and a service key; returns both."""
    folder = tmp_path / "artifacts"
    (folder / "lenet300").mkdir(parents=True)
    shutil.copy(ARTIFACTS / "lenet300" / "manifest.json", folder / "lenet300")
    generate_key(tmp_path / "service.key", tmp_path / "service.pub")
    return folder, tmp_path / "service.key"


def _status(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_a_running_service_follows_its_tokens_file(tmp_path: Path) -> None:
    folder, key = _served(tmp_path)
    file = tmp_path / "tokens.json"
    old = issue_token(file, "phone1", "acme")
    config = ServeConfig(folder, key, file, artifact_key=ARTIFACTS / "signing.pub", port=0)
    with serve_in_thread(config) as url:
        assert config.host == "127.0.0.1"
        listing = f"{url}/v1/artifacts"
        assert _status(listing, old) == 200
        new = issue_token(file, "phone1", "acme")  # re-issued: the old one is revoked
        assert (_status(listing, old), _status(listing, new)) == (401, 200)
        added = issue_token(file, "phone2", "acme")
        assert _status(listing, added) == 200
        file.write_text("{")  # half-edited: the last good registry is kept
        assert (_status(listing, new), _status(listing, old)) == (200, 401)
        file.unlink()
        assert _status(listing, added) == 200


def test_the_cli_says_a_reissued_device_lost_its_old_token_or_tenant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "tokens.json"
    issue = ["serve", "--tokens", str(file), "--issue", "phone1", "--tenant"]
    assert main([*issue, "acme"]) == 0
    assert capsys.readouterr().err == ""
    assert main([*issue, "acme"]) == 0
    err = capsys.readouterr().err
    assert "already registered: its old token no longer works." in err and "moved" not in err
    assert main([*issue, "other"]) == 0
    out, err = capsys.readouterr()
    assert len(out.split()) == 1  # the token alone on stdout
    assert "moved from tenant acme to tenant other" in err
    assert Tokens(file).lookup(out.strip()).tenant == "other"


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--port", "70000", "argument --port: 70000 is not a port: use 0-65535"),
        ("--port", "-1", "argument --port: -1 is not a port"),
        ("--max-request-bytes", "0", "argument --max-request-bytes: must be >= 1, got 0"),
        ("--burst", "0", "argument --burst: must be >= 1, got 0"),
    ],
)
def test_serve_refuses_bad_numbers_in_one_line(
    flag: str, value: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["serve", "--tokens", str(tmp_path / "t.json"), "--artifacts", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--key", str(tmp_path / "k"), flag, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and says in err and "Traceback" not in err
    with pytest.raises(ValueError, match="max_request_bytes must be >= 1"):
        Limits(max_request_bytes=0)


def test_a_bad_tls_pair_is_refused_before_listening(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, key = _served(tmp_path)
    file = tmp_path / "tokens.json"
    issue_token(file, "phone1", "acme")
    cert, tls_key = self_signed(tmp_path / "tls")
    _, other_key = self_signed(tmp_path / "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    argv = ["serve", "--artifacts", str(folder), "--key", str(key), "--tokens", str(file)]
    argv += ["--artifact-key", str(ARTIFACTS / "signing.pub"), "--port", "0"]
    cases = [
        (garbage, tls_key, "not a PEM certificate and its private key"),
        (cert, other_key, "the key is not the certificate's"),
        (tmp_path, tls_key, f"--tls-cert {tmp_path} is a directory"),
        (cert, tmp_path / "none.pem", "--tls-key"),
    ]
    for tls_cert, tls_private, says in cases:
        assert main([*argv, "--tls-cert", str(tls_cert), "--tls-key", str(tls_private)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("error: ") and says in err, err
        assert err.count("\n") == 1 and "listening" not in err
