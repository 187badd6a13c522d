#!/usr/bin/env python3
"""multiprocessing.Pool.apply_async of many small jobs from one client: submit all, then get
all (the peer of zwq's asynchronous small jobs)."""
import multiprocessing

import common

GET_TIMEOUT_S = 300  # no single result may hang the benchmark


def noop(x):
    return x


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, required=True)
    a = p.parse_args()

    with multiprocessing.get_context("fork").Pool(a.workers) as pool:
        def one_run():
            results = [pool.apply_async(noop, (i,)) for i in range(a.jobs)]
            return sum(r.get(GET_TIMEOUT_S) for r in results)

        seconds, _ = common.timed_runs(a.runs, one_run)
    common.emit("pool_apply_async", seconds, jobs=a.jobs, workers=a.workers)


if __name__ == "__main__":
    main()
