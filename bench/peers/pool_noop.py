#!/usr/bin/env python3
"""multiprocessing.Pool running no-op tasks: Pool.map with chunksize 1, or with its default
chunksize (len / (4 * workers), rounded up)."""
import multiprocessing

import common


def noop(x):
    return x


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, required=True)
    p.add_argument("--chunksize", type=int, default=0, help="0: Pool.map's default")
    a = p.parse_args()
    chunksize = a.chunksize if a.chunksize > 0 else None
    tasks = range(a.tasks)
    with multiprocessing.get_context("fork").Pool(a.workers) as pool:
        seconds, _ = common.timed_runs(a.runs, lambda: pool.map(noop, tasks, chunksize))
    common.emit("pool_map_noop", seconds, tasks=a.tasks, chunksize=a.chunksize, workers=a.workers)


if __name__ == "__main__":
    main()
