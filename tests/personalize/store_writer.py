"""Child process of the SIGKILL test: saves one user's record over and over, printing each.

python tests/personalize/store_writer.py STORE_DIR
Each run goes on from the record it finds. Record i holds a 1 MiB array filled with i and
threshold i, so a reader can tell a whole record from a mix of two.
"""

from __future__ import annotations

import sys

import numpy as np

from personalize.store import RecordStore, UserRecord


def main() -> None:
    store = RecordStore(sys.argv[1])
    i = store.load("alice").meta["i"] if store.users() else 0  # go on from the last record
    while True:
        i += 1
        weights = {"w": np.full((256, 1024), i, np.float32)}
        store.save(UserRecord("alice", float(i), "head", weights, {"i": i}))
        print(i, flush=True)


if __name__ == "__main__":
    main()
