"""bench-enroll, continual personalization: FRR over 50 drifting unlocks with and without updates,
and poisoning (:mod:`personalize.continual`).

Each person enrolls 5 captures on a device with the default ``ContinualConfig``, then unlocks 50
times (5 unlocks a day for 10 simulated days, through ``Device.verify``: quality gate, int8 embed,
the user's head) with captures that drift away from the enrollment's:

  * ``yale_b``: Extended Yale B (38 people; **seen by the face backbone in training**): enroll on
    the 5 lightings nearest frontal (smallest azimuth^2 + elevation^2), unlock on the next 50 in
    order of that angle, light moving to the side and behind;
  * ``orl``: ORL (40 people the backbone never saw; mild pose and expression drift): enroll on
    images 1-5, unlock on images 6-10 in turn (each one 10 times) under a side light that
    strengthens over the sequence (:func:`side_light`: a brightness ramp across the face and a
    gamma, strength 0 to ``DRIFT``), so drift is synthetic there;
  * ``dev`` (``--dev``): LFW development people (never trained on, never reported as a result),
    enroll on their first 5 images, unlock on the rest in turn under the same synthetic drift.
    The config defaults are chosen here (``--dev`` runs the grid).

The same enrollment unlocks once without updates (``adapt=False``) and once with them.
Poisoning, per owner, with updates on, on a fresh enrollment each: (a) ``persistent``: the other
person of the set whose captures score highest against the owner tries ``ATTACKS`` times (one
try an hour), cycling their captures; (b) ``lenient``: the same, with the owner enrolled at a
target FAR of ``LENIENT_FAR``, so the attacker is sometimes accepted and accepted captures can
enter the buffer; each is compared with the same attempts without updates. ``poisoning_far``:
the attackers' accept rate with updates at the device's target FAR.

  python notebooks/bench/bench_enroll_continual.py [--artifact DIR] [--key PUB] [--sets orl yale_b]
      [--people N] [--dev]

Standalone it merges ``continual`` into ``notebooks/results/enrollment.json``; ``bench_enroll.py``
calls :func:`run` and stores what it returns under the same key.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from _results import RESULTS, ROOT, print_table, run_main, this_run, write_results
from tqdm.auto import tqdm

from devices.files import atomic_write
from personalize import DEFAULT_FAR, Device, QualityError, check_image
from personalize.continual import Continual, ContinualConfig

UNLOCKS = 50
PER_DAY = 5
ENROLL = 5
DRIFT = 0.8  # strongest side light of the synthetic drift (see side_light)
ATTACKS = 200
LENIENT_FAR = 1e-2
START = 1_800_000_000.0  # a fixed simulated start time (seconds since the epoch, UTC)
HOUR = 3600.0


class Person(NamedTuple):
    enroll: list[np.ndarray]
    unlocks: list[np.ndarray]  # the drifting sequence, in order
    others: list[np.ndarray]  # captures an attacker presents (their own, undrifted)
    name: str = ""  # the set's name for the person (its folder)


# -- data ----------------------------------------------------------------------------------------
def side_light(image: np.ndarray, strength: float) -> np.ndarray:
    """``image`` (uint8) lit from one side: brightness ramps from ``1 - strength`` (left) to 1
    (right) and a gamma of ``1 + strength`` darkens the mid-tones."""
    x = image.astype(np.float64) / 255.0
    ramp = np.linspace(1.0 - strength, 1.0, x.shape[1])[None, :]
    return np.clip(255.0 * (x * ramp) ** (1.0 + strength), 0, 255).astype(np.uint8)


def _drifting(base: list[np.ndarray]) -> list[np.ndarray]:
    """50 unlocks cycling ``base`` under a side light strengthening from 0 to ``DRIFT``."""
    return [side_light(base[i % len(base)], DRIFT * i / (UNLOCKS - 1)) for i in range(UNLOCKS)]


def yale_b_people(limit: int | None) -> list[Person]:
    from pretrain.data.face_sets import YALE_B, read_framed

    faces = read_framed(YALE_B, progress=False)
    people = []
    for label in range(len(faces.identities))[:limit]:
        idx = [i for i in range(len(faces.images)) if faces.labels[i] == label]
        angle = []
        for i in idx:
            m = re.search(r"A([+-]\d+)E([+-]\d+)", faces.paths[i].name)
            angle.append(int(m[1]) ** 2 + int(m[2]) ** 2 if m else 1 << 30)
        order = [idx[j] for j in np.argsort(angle, kind="stable")]
        images = [faces.images[i] for i in order]
        people.append(
            Person(
                images[:ENROLL],
                images[ENROLL : ENROLL + UNLOCKS],
                images[: 2 * ENROLL],
                faces.identities[label],
            )
        )
    return people


def orl_people(limit: int | None) -> list[Person]:
    from pretrain.data.faces import read_orl

    faces = read_orl()
    people = []
    for label in range(len(faces.identities))[:limit]:
        images = [faces.images[i] for i in range(len(faces.images)) if faces.labels[i] == label]
        people.append(
            Person(images[:ENROLL], _drifting(images[ENROLL:]), images, faces.identities[label])
        )
    return people


def dev_people(limit: int | None) -> list[Person]:
    from pretrain.data.face_sets import LFW, image_counts, read_framed
    from pretrain.embedding.face_data import lfw_roles

    names = lfw_roles(image_counts(LFW)).dev[:limit]
    faces = read_framed(LFW, people=names, progress=False)
    people = []
    for label in range(len(names)):
        images = [faces.images[i] for i in range(len(faces.images)) if faces.labels[i] == label]
        people.append(Person(images[:ENROLL], _drifting(images[ENROLL:]), images, names[label]))
    return people


SETS = {"yale_b": yale_b_people, "orl": orl_people, "dev": dev_people}
UNSEEN = {"yale_b": False, "orl": True, "dev": True}


# -- one device ----------------------------------------------------------------------------------
class Clock:
    """A settable clock for ``Continual``."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _device(artifact: Path, key: Path, workdir: Path, config: ContinualConfig) -> Device:
    store = Path(tempfile.mkdtemp(dir=workdir, prefix="store-"))
    dev = Device(artifact, store, trusted_key=key, keys=store / "keys", continual=config)
    return dev


def _attempts(
    dev: Device, clock: Clock, images: list[np.ndarray], step: float, adapt: bool
) -> tuple[list[bool], dict[str, int]]:
    """Verifies ``images`` in order as ``"owner"`` (a capture the quality gate refuses is a
    failed attempt); accepts, and what the learner did. Without updates nothing changes between
    attempts, so they are scored at once (``Device.scores``, the scores ``verify`` gives). With
    updates, a rejected attempt changes nothing either (the learner's first guard): the attempts
    up to the next one the current record accepts are scored at once, and that one goes through
    ``Device.verify`` (which decides, and may update the record)."""
    assert dev.continual is not None
    gate = np.asarray([_passes_gate(dev, x) for x in images])
    embedded = dev.embed(images)
    accepted: list[bool] = []
    outcomes: dict[str, int] = {}
    i = 0
    while i < len(images):
        threshold = dev.store.load("owner").threshold
        rest = {k: v[i:] for k, v in embedded.items()}
        hits = np.flatnonzero(gate[i:] & (dev.scores("owner", rest) >= threshold))
        if not adapt or not hits.size:
            accepted += [bool(v) for v in np.isin(np.arange(len(images) - i), hits)]
            break
        j = i + int(hits[0])
        accepted += [False] * (j - i)
        clock.now = START + j * step
        ok = dev.verify("owner", images[j], adapt=True).accept
        accepted.append(ok)
        what = dev.continual.last.outcome if ok else "rejected"
        outcomes[what] = outcomes.get(what, 0) + 1
        i = j + 1
    if adapt:
        outcomes["rejected"] = outcomes.get("rejected", 0) + len(images) - sum(outcomes.values())
    return accepted, outcomes


def _passes_gate(dev: Device, image: np.ndarray) -> bool:
    try:
        check_image(np.asarray(image), dev.spec, dpi=dev.sensor_dpi)
    except QualityError:
        return False
    return True


def run_person(
    dev: Device,
    clock: Clock,
    person: Person,
    attacker: Person | None,
    poison: bool,
    unlock_far: float = DEFAULT_FAR,
) -> dict[str, Any]:
    """One owner: the unlock sequence without and with updates; the two poisoning attacks."""
    day = 86_400.0 / PER_DAY
    clock.now = START
    dev.enroll("owner", person.enroll, measure_memory=False, target_far=unlock_far)
    without, _ = _attempts(dev, clock, person.unlocks, day, adapt=False)
    with_updates, outcomes = _attempts(dev, clock, person.unlocks, day, adapt=True)
    out: dict[str, Any] = {
        "rejects_without": int(UNLOCKS - sum(without)),
        "rejects_with": int(UNLOCKS - sum(with_updates)),
        "outcomes": outcomes,
        "updates": int(outcomes.get("updated", 0)),
    }
    if not poison or attacker is None:
        return out
    tries = [attacker.others[i % len(attacker.others)] for i in range(ATTACKS)]
    for name, far in (("persistent", DEFAULT_FAR), ("lenient", LENIENT_FAR)):
        clock.now = START
        dev.enroll("owner", person.enroll, measure_memory=False, target_far=far)
        base, _ = _attempts(dev, clock, tries, HOUR, adapt=False)
        attacked, what = _attempts(dev, clock, tries, HOUR, adapt=True)
        out[name] = {
            "accepts_without": int(sum(base)),
            "accepts_with": int(sum(attacked)),
            # the attacker cycles their captures: how many distinct ones were ever accepted
            "captures_accepted": len(
                {i % len(attacker.others) for i, ok in enumerate(base + attacked) if ok}
            ),
            "captures": len(attacker.others),
            "updates": int(what.get("updated", 0)),
            "target_far": far,
        }
    return out


def nearest_attacker(dev: Device, people: list[Person], owner: int) -> int:
    """The other person whose captures score highest (mean) against ``owner``'s enrollment."""
    dev.enroll("owner", people[owner].enroll, measure_memory=False)
    best, top = -1, -np.inf
    for j, other in enumerate(people):
        if j != owner:
            mean = float(np.mean(dev.scores("owner", other.others)))
            if mean > top:
                best, top = j, mean
    return best


def run_set(
    people: list[Person],
    artifact: Path,
    key: Path,
    workdir: Path,
    config: ContinualConfig,
    *,
    poison: bool = True,
    desc: str = "",
    unlock_far: float = DEFAULT_FAR,
) -> dict[str, Any]:
    """Every person of a set as owner (see the module docstring)."""
    clock = Clock()
    dev = _device(artifact, key, workdir, config)
    assert dev.continual is not None
    dev.continual = Continual(dev, config, clock=clock)
    rows = []
    t0 = time.perf_counter()
    attackers = []
    for i in tqdm(range(len(people)), desc=desc, leave=False):
        attackers.append(nearest_attacker(dev, people, i) if poison else -1)
        attacker = people[attackers[-1]] if poison else None
        rows.append(run_person(dev, clock, people[i], attacker, poison, unlock_far))
        dev.remove("owner")
    n = len(people) * UNLOCKS
    out: dict[str, Any] = {
        "people": len(people),
        "unlock_target_far": unlock_far,
        "unlocks": n,
        "frr_pct_without_updates": 100.0 * sum(r["rejects_without"] for r in rows) / n,
        "frr_pct_with_updates": 100.0 * sum(r["rejects_with"] for r in rows) / n,
        "updates_per_person": float(np.mean([r["updates"] for r in rows])),
        "outcomes": {
            k: int(sum(r["outcomes"].get(k, 0) for r in rows))
            for k in sorted({k for r in rows for k in r["outcomes"]})
        },
        "seconds": time.perf_counter() - t0,
    }
    if poison:
        attempts = len(people) * ATTACKS
        for name in ("persistent", "lenient"):
            parts = [r[name] for r in rows]
            out[f"poisoning_{name}"] = {
                "attempts": attempts,
                "target_far": parts[0]["target_far"],
                "far_without_updates": sum(p["accepts_without"] for p in parts) / attempts,
                "far_with_updates": sum(p["accepts_with"] for p in parts) / attempts,
                "updates": int(sum(p["updates"] for p in parts)),
                # the owners any attack got into, by the set's names
                "accepted_owners": [
                    {
                        "owner": people[i].name,
                        "attacker": people[attackers[i]].name,
                        **{k: p[k] for k in ("accepts_without", "accepts_with")},
                        **{k: p[k] for k in ("captures_accepted", "captures")},
                    }
                    for i, p in enumerate(parts)
                    if p["accepts_without"] or p["accepts_with"]
                ],
            }
        out["poisoning_far"] = out["poisoning_persistent"]["far_with_updates"]
    return out


# -- choosing the defaults on the development people ---------------------------------------------
MARGINS = (0.0, 0.05, 0.1, 0.15)
BUFFERS = (10, 20)
CAPS = (1, 3)


def choose(
    artifact: Path,
    key: Path,
    workdir: Path,
    people: int,
    buffers: tuple[int, ...],
    margins: tuple[float, ...],
) -> dict[str, Any]:
    """The grid on the LFW development people: FRR with updates and the lenient attack's FAR.
    Their unlocks run at ``LENIENT_FAR``: at the device's 1/50,000 no drifting LFW capture is
    accepted, with or without updates (a first grid measured FRR 100% throughout)."""
    dev = dev_people(people)
    rows = []
    for margin in margins:
        for size in buffers:
            for cap in CAPS:
                config = ContinualConfig(margin=margin, buffer_size=size, max_updates_per_day=cap)
                got = run_set(
                    dev,
                    artifact,
                    key,
                    workdir,
                    config,
                    desc=f"dev {margin} {size} {cap}",
                    unlock_far=LENIENT_FAR,
                )
                row = {"margin": margin, "buffer_size": size, "max_updates_per_day": cap, **got}
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "outcomes"}), flush=True)
    return {"people": len(dev), "grid": rows}


def pick(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rule the defaults follow: among the grid's configs under which the lenient attacker is
    accepted no more often with updates than without, the lowest FRR with updates (ties: the
    larger margin, then the smaller buffer and cap)."""
    safe = [
        r
        for r in rows
        if r["poisoning_lenient"]["far_with_updates"]
        <= r["poisoning_lenient"]["far_without_updates"]
    ]
    if not safe:
        raise SystemExit("no config of the grid keeps the lenient attacker's FAR from rising.")
    best = min(
        safe,
        key=lambda r: (
            r["frr_pct_with_updates"],
            -r["margin"],
            r["buffer_size"],
            r["max_updates_per_day"],
        ),
    )
    return {k: best[k] for k in ("margin", "buffer_size", "max_updates_per_day")}


# -- driver --------------------------------------------------------------------------------------
def run(
    artifact: Path,
    key: Path,
    workdir: Path,
    *,
    sets: tuple[str, ...] = ("orl", "yale_b"),
    people: int | None = None,
    config: ContinualConfig | None = None,
) -> dict[str, Any]:
    """The ``continual`` figures of ``enrollment.json``: each set, and the headline keys from
    the first set of people the backbone never saw (else the first set)."""
    config = config or ContinualConfig()
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"sets": {}}
    for name in sets:
        result = run_set(SETS[name](people), artifact, key, workdir, config, desc=name)
        out["sets"][name] = {
            **result,
            "backbone_saw_these_people": not UNSEEN[name],
            "config": {k: v for k, v in config.__dict__.items() if k != "sgd"},
        }
    return summarize(out["sets"], config)


def summarize(sets: dict[str, Any], config: ContinualConfig) -> dict[str, Any]:
    """The headline keys from the sets' results: the first set of people the backbone never saw
    (else the first set)."""
    out: dict[str, Any] = {"sets": sets}
    headline = next((s for s in sets if UNSEEN[s]), next(iter(sets)))
    main = sets[headline]
    out.update(
        frr_pct_without_updates=main["frr_pct_without_updates"],
        frr_pct_with_updates=main["frr_pct_with_updates"],
        poisoning_far=main["poisoning_far"],
        far_target=DEFAULT_FAR,
        headline_set=headline,
        config={k: v for k, v in config.__dict__.items() if k != "sgd"},
        protocol=__doc__.split("\n\n")[1] if __doc__ else "",
        targets={
            "updates_lower_frr": main["frr_pct_with_updates"] < main["frr_pct_without_updates"],
            "poisoning_far_le_target": main["poisoning_far"] <= DEFAULT_FAR,
        },
    )
    return out


def table(out: dict[str, Any]) -> None:
    rows = []
    for name, r in out["sets"].items():
        p, q = r.get("poisoning_persistent", {}), r.get("poisoning_lenient", {})
        rows.append(
            (
                name,
                r["people"],
                r["frr_pct_without_updates"],
                r["frr_pct_with_updates"],
                r["updates_per_person"],
                p.get("far_without_updates", "-"),
                p.get("far_with_updates", "-"),
                q.get("far_without_updates", "-"),
                q.get("far_with_updates", "-"),
            )
        )
    print_table(
        (
            "set",
            "people",
            "FRR % w/o",
            "FRR % with",
            "updates",
            "attack FAR w/o",
            "attack FAR with",
            "lenient w/o",
            "lenient with",
        ),
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", default=str(RESULTS / "artifacts" / "face"))
    parser.add_argument("--key", default=str(RESULTS / "artifacts" / "signing.pub"))
    parser.add_argument("--sets", nargs="+", default=["orl", "yale_b"], choices=sorted(SETS))
    parser.add_argument("--people", type=int, help="first N people of each set (default all)")
    parser.add_argument("--dev", action="store_true", help="the defaults' grid on dev people")
    parser.add_argument(
        "--pick", action="store_true", help="the defaults by the dev grids' results (pick())"
    )
    parser.add_argument("--margins", type=float, nargs="+", help="--dev: margins of the grid")
    parser.add_argument("--buffers", type=int, nargs="+", help="--dev: buffer sizes of the grid")
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench-continual"))
    args = parser.parse_args()
    artifact, key, workdir = Path(args.artifact), Path(args.key), Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.pick:
        files = sorted(RESULTS.glob("continual_dev_*.json"))
        rows = [r for f in files for r in json.loads(f.read_text())["grid"]]
        print(f"{len(rows)} configs from {', '.join(f.name for f in files)}: {pick(rows)}")
        return
    if args.dev:
        buffers = tuple(args.buffers or BUFFERS)
        margins = tuple(args.margins or MARGINS)
        grid = choose(artifact, key, workdir, args.people or 10, buffers, margins)
        path = write_results(f"continual_dev_margin{'_'.join(map(str, margins))}", grid)
        print_table(
            ("margin", "buffer", "cap", "FRR w/o", "FRR with", "lenient w/o", "lenient with"),
            [
                (
                    r["margin"],
                    r["buffer_size"],
                    r["max_updates_per_day"],
                    r["frr_pct_without_updates"],
                    r["frr_pct_with_updates"],
                    r["poisoning_lenient"]["far_without_updates"],
                    r["poisoning_lenient"]["far_with_updates"],
                )
                for r in grid["grid"]
            ],
        )
        print(f"wrote {path.relative_to(ROOT)}")
        return
    out = run(artifact, key, workdir, sets=tuple(args.sets), people=args.people)
    for result in out["sets"].values():
        result.update(this_run())
    # The rest of the file as bench_enroll.py wrote it; sets measured by another run are kept.
    path = RESULTS / "enrollment.json"
    merged = json.loads(path.read_text()) if path.is_file() else {}
    sets = {**(merged.get("continual") or {}).get("sets", {}), **out["sets"]}
    out = summarize(sets, ContinualConfig())
    table(out)
    atomic_write(path, (json.dumps({**merged, "continual": out}, indent=2) + "\n").encode())
    print(f"wrote {path.relative_to(ROOT)} (continual)")


if __name__ == "__main__":
    run_main(main)
