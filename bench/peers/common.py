"""Shared helpers of the Python peers: argument parsing, the timed runs and the JSON they print.

Every peer prints one JSON object on stdout: {"peer": NAME, "seconds": [one per run], ...}.
zwq-bench runs each peer as a child process and turns the seconds into rates.
"""
import argparse
import json
import sys
import time

import numpy as np


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--runs", type=int, default=5, help="timed runs (after one untimed warm-up)")
    return p


def open_array(path):
    """The benchmark's float32 array, read-only, mapped like numpy.memmap users do."""
    return np.memmap(path, dtype=np.float32, mode="r")


def slice_bounds(n, slice_elems):
    return [(i, min(n, i + slice_elems)) for i in range(0, n, slice_elems)]


def timed_runs(runs, body):
    """Calls body() once untimed, then `runs` times timed; returns (seconds, last value)."""
    value = body()
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        value = body()
        seconds.append(time.perf_counter() - t0)
    return seconds, value


def emit(peer, seconds, **extra):
    out = {"peer": peer, "seconds": seconds}
    out.update(extra)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
