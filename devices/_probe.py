"""Child process of :func:`devices.measure_signature`: load, call, report one JSON line.

python -m devices._probe MODEL SIGNATURE INPUTS.npz [--runs N] [--delegate default|none]
    [--threads T] [--invoke-only]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from devices.measure import prefault_libraries, reset_peak, rss_status, trim_heap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devices._probe")
    parser.add_argument("model")
    parser.add_argument("signature")
    parser.add_argument("inputs")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--delegate", choices=("default", "none"), default="default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--invoke-only", action="store_true", help="time Interpreter.invoke() alone (one subgraph)"
    )
    args = parser.parse_args(argv)
    with np.load(args.inputs) as npz:
        feed = {k: npz[k] for k in npz.files}
    resolver = (
        OpResolverType.AUTO
        if args.delegate == "default"
        else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    prefault_libraries()
    gc.collect()
    gc.disable()  # no collector pass inside the measured region
    trim_heap()
    reset_peak()
    base = rss_status()
    interp = Interpreter(
        model_path=args.model, num_threads=args.threads, experimental_op_resolver_type=resolver
    )
    runner = interp.get_signature_runner(args.signature)
    loaded = rss_status()
    t0 = time.perf_counter()
    runner(**feed)
    first = time.perf_counter() - t0
    lat = []
    if args.invoke_only:  # the kernels alone (a model with one subgraph): no copies in or out
        index = {k: d["index"] for k, d in runner.get_input_details().items()}
        del runner  # it holds the interpreter's buffers, which invoke() refuses to run under
        gc.collect()
        for key, i in index.items():
            interp.set_tensor(i, feed[key])
        interp.invoke()
        for _ in range(args.runs):
            t0 = time.perf_counter()
            interp.invoke()
            lat.append(time.perf_counter() - t0)
    else:
        for _ in range(args.runs):
            t0 = time.perf_counter()
            runner(**feed)
            lat.append(time.perf_counter() - t0)
    end = rss_status()
    print(
        json.dumps(
            {
                "peak_bytes": end["VmHWM"] - base["VmRSS"],
                "loaded_bytes": loaded["VmRSS"] - base["VmRSS"],
                "anon_bytes": end["RssAnon"] - base["RssAnon"],
                "file_bytes": end["RssFile"] - base["RssFile"],
                "first_call_s": first,
                "latencies_s": lat,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
