"""Offload policy: enroll on the device or in the cloud, and why, in one line.

The cloud is reachable "only when an Internet connection is available" (the seed), costs the
user's data and, here, may only ever receive embeddings, never raw biometrics, and only with the
user's consent. So the device is the default; the cloud is chosen only when the local step does
not fit in memory, would take too long, or would drain a battery that is not charging, and the
connection and the consent allow it. When neither side can run it now, the enrollment waits.
The rules are a table read top to bottom; the first that matches decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

CONNECTIVITY = ("offline", "metered", "unmetered")


@dataclasses.dataclass(frozen=True)
class Situation:
    """What the device knows when an enrollment starts.

    Attributes:
      connectivity: ``offline``, ``metered`` (cellular) or ``unmetered`` (Wi-Fi).
      battery_level: remaining charge, 0..1 (1 for mains-powered devices).
      charging: plugged in.
      consent_embeddings: the user agreed to send embeddings (raw images never leave).
      local_latency_s, local_energy_j, local_peak_bytes: the estimated local enrollment
        (:func:`devices.estimate`, :func:`devices.plan_signature`).
      free_bytes: memory the app may use now.
      battery_joules: full-charge capacity; None on mains power.
    """

    connectivity: str
    battery_level: float
    charging: bool
    consent_embeddings: bool
    local_latency_s: float
    local_energy_j: float
    local_peak_bytes: int
    free_bytes: int
    battery_joules: float | None = None

    def __post_init__(self) -> None:
        if self.connectivity not in CONNECTIVITY:
            raise ValueError(
                f"connectivity {self.connectivity!r}: expected one of {', '.join(CONNECTIVITY)}."
            )
        if not 0.0 <= self.battery_level <= 1.0:
            raise ValueError(f"battery_level {self.battery_level}: expected 0..1.")
        for name in ("local_latency_s", "local_energy_j", "local_peak_bytes", "free_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")

    @property
    def online(self) -> bool:
        return self.connectivity != "offline"

    @property
    def cloud_allowed(self) -> bool:
        return self.online and self.consent_embeddings

    @property
    def fits(self) -> bool:
        return self.local_peak_bytes <= self.free_bytes

    @property
    def battery_fraction(self) -> float:
        """Share of the remaining charge the local enrollment would use (0 on mains)."""
        if self.battery_joules is None or self.charging:
            return 0.0
        remaining = self.battery_joules * self.battery_level
        return float("inf") if remaining <= 0 else self.local_energy_j / remaining


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """Thresholds of the policy; defaults for an interactive enrollment."""

    max_latency_s: float = 2.0
    max_battery_fraction: float = 0.01
    critical_battery: float = 0.05


@dataclasses.dataclass(frozen=True)
class Decision:
    """Where the enrollment runs, what leaves the device, and the one-line reason."""

    where: str  # "local", "cloud" or "defer"
    sends: str  # "nothing" or "embeddings"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


Rule = tuple[
    str, Callable[[Situation, PolicyConfig], bool], str, Callable[[Situation, PolicyConfig], str]
]

RULES: tuple[Rule, ...] = (
    (
        "does not fit, cloud allowed",
        lambda s, c: not s.fits and s.cloud_allowed,
        "cloud",
        lambda s, c: (
            f"the local step needs {_mb(s.local_peak_bytes)} but {_mb(s.free_bytes)} is free; sending embeddings only, with consent"
        ),
    ),
    (
        "does not fit, no cloud",
        lambda s, c: not s.fits,
        "defer",
        lambda s, c: (
            f"the local step needs {_mb(s.local_peak_bytes)} but {_mb(s.free_bytes)} is free, and "
            + (
                "the user has not consented to sending embeddings"
                if s.online
                else "there is no connection"
            )
        ),
    ),
    (
        "critical battery",
        lambda s, c: (
            not s.charging
            and s.battery_joules is not None
            and s.battery_level < c.critical_battery
            and not s.cloud_allowed
        ),
        "defer",
        lambda s, c: f"battery at {100 * s.battery_level:.0f}% and not charging; waiting for power",
    ),
    (
        "charging",
        lambda s, c: s.charging,
        "local",
        lambda s, c: (
            f"charging, and it fits ({_mb(s.local_peak_bytes)} of {_mb(s.free_bytes)}); nothing leaves the device"
        ),
    ),
    (
        "drains battery, cloud allowed",
        lambda s, c: s.battery_fraction > c.max_battery_fraction and s.cloud_allowed,
        "cloud",
        lambda s, c: (
            f"the local enrollment would use {100 * s.battery_fraction:.2f}% of the remaining charge (limit {100 * c.max_battery_fraction:g}%); sending embeddings only, with consent"
        ),
    ),
    (
        "too slow, unmetered cloud allowed",
        lambda s, c: (
            s.local_latency_s > c.max_latency_s
            and s.cloud_allowed
            and s.connectivity == "unmetered"
        ),
        "cloud",
        lambda s, c: (
            f"the local enrollment would take {s.local_latency_s:.1f} s (limit {c.max_latency_s:g} s); sending embeddings over an unmetered link, with consent"
        ),
    ),
    (
        "default",
        lambda s, c: True,
        "local",
        lambda s, c: (
            f"it fits ({_mb(s.local_peak_bytes)} of {_mb(s.free_bytes)}), takes {s.local_latency_s:.2f} s"
            + (
                ""
                if s.battery_joules is None
                else f" and {100 * s.battery_fraction:.3f}% of the charge"
            )
            + "; nothing leaves the device"
        ),
    ),
)


def decide(situation: Situation, config: PolicyConfig | None = None) -> Decision:
    """Local, cloud or defer for one enrollment, with the one-line reason.

    Example:
      >>> decide(Situation("offline", 0.8, False, True, 0.1, 0.5, 2**20, 2**28, 47124.0)).where
      'local'
    """
    cfg = config or PolicyConfig()
    for _name, matches, where, reason in RULES:
        if matches(situation, cfg):
            sends = "embeddings" if where == "cloud" else "nothing"
            return Decision(where, sends, reason(situation, cfg))
    raise AssertionError("the default rule always matches")  # pragma: no cover
