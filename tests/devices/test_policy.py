"""Offload decisions for a table of situations; raw biometrics never leave, consent is required."""

from __future__ import annotations

import pytest

from devices import Situation, decide

MiB = 2**20
PHONE_J = 47124.0  # the phone_cpu profile's battery

# connectivity, battery, charging, consent, latency s, energy J, peak MiB, free MiB -> where, says
CASES = [
    ("offline", 0.8, False, True, 0.2, 0.5, 10, 512, "local", "nothing leaves the device"),
    ("unmetered", 0.8, False, True, 0.2, 0.5, 10, 512, "local", "nothing leaves the device"),
    ("unmetered", 0.8, False, True, 0.2, 0.5, 600, 512, "cloud", "embeddings only"),
    ("unmetered", 0.8, False, False, 0.2, 0.5, 600, 512, "defer", "not consented"),
    ("offline", 0.8, False, True, 0.2, 0.5, 600, 512, "defer", "no connection"),
    ("metered", 0.5, False, True, 0.2, 400.0, 10, 512, "cloud", "of the remaining charge"),
    ("metered", 0.5, True, True, 0.2, 400.0, 10, 512, "local", "charging"),
    ("offline", 0.5, False, True, 0.2, 400.0, 10, 512, "local", "nothing leaves"),
    ("offline", 0.03, False, True, 0.2, 0.5, 10, 512, "defer", "battery at 3%"),
    ("unmetered", 0.03, False, True, 0.2, 0.5, 10, 512, "local", "nothing leaves"),
    ("unmetered", 0.8, False, True, 5.0, 0.5, 10, 512, "cloud", "would take 5.0 s"),
    ("metered", 0.8, False, True, 5.0, 0.5, 10, 512, "local", "takes 5.00 s"),
    ("unmetered", 0.8, False, False, 5.0, 0.5, 10, 512, "local", "nothing leaves"),
]


@pytest.mark.parametrize(
    ("conn", "battery", "charging", "consent", "lat", "joules", "peak", "free", "where", "says"),
    CASES,
)
def test_decisions(conn, battery, charging, consent, lat, joules, peak, free, where, says) -> None:
    situation = Situation(
        conn, battery, charging, consent, lat, joules, peak * MiB, free * MiB, PHONE_J
    )
    decision = decide(situation)
    assert decision.where == where, decision
    assert says in decision.reason, decision
    assert "\n" not in str(decision)  # one line
    assert decision.sends == ("embeddings" if where == "cloud" else "nothing")


def test_cloud_needs_consent_and_a_connection_in_every_case() -> None:
    for case in CASES:
        conn, consent = case[0], case[3]
        d = decide(Situation(*case[:6], case[6] * MiB, case[7] * MiB, PHONE_J))  # type: ignore[misc]
        if d.where == "cloud":
            assert consent and conn != "offline"


def test_mains_power_never_counts_battery() -> None:
    d = decide(Situation("unmetered", 1.0, False, True, 0.2, 10_000.0, MiB, 512 * MiB, None))
    assert d.where == "local"


@pytest.mark.parametrize(
    "kwargs",
    [{"connectivity": "5g"}, {"battery_level": 1.5}, {"free_bytes": -1}],
)
def test_bad_situations_are_refused(kwargs) -> None:
    base = dict(
        connectivity="offline",
        battery_level=0.5,
        charging=False,
        consent_embeddings=False,
        local_latency_s=0.1,
        local_energy_j=0.1,
        local_peak_bytes=1,
        free_bytes=2,
    )
    with pytest.raises(ValueError):
        Situation(**{**base, **kwargs})
