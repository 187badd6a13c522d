#!/usr/bin/env python3
"""multiprocessing.Pool summing the benchmark's array by slices with imap_unordered.

What a Python user would write without zwq: each worker maps the file once (initializer), each
task is a (start, stop) pair, imap_unordered with its default chunksize (1).
"""
import multiprocessing

import common

mdata = None


def init(path):
    global mdata
    mdata = common.open_array(path)


def sum_slice(bounds):
    start, stop = bounds
    return float(mdata[start:stop].sum())


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--array", required=True, help="path of the float32 array")
    p.add_argument("--slice-elems", type=int, required=True)
    a = p.parse_args()
    n = len(common.open_array(a.array))
    bounds = common.slice_bounds(n, a.slice_elems)
    with multiprocessing.get_context("fork").Pool(a.workers, init, (a.array,)) as pool:
        seconds, value = common.timed_runs(
            a.runs, lambda: sum(pool.imap_unordered(sum_slice, bounds)))
    common.emit("pool_imap_unordered", seconds, value=value, slices=len(bounds), workers=a.workers)


if __name__ == "__main__":
    main()
