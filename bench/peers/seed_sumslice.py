#!/usr/bin/env python3
"""The seed program, ported to Python 3: the pyzmq /dev/shm slice sum from the deck
'Paralelismo en Python' (ZMQ, "mensajes indirectos", the sumslice example).

Its structure is kept: the main process PUSHes pickled slice() objects over ipc to one worker
process per core (multiprocessing.Process, forked, sharing the memmap `mdata`); each worker sums
mdata[s] and PUSHes the pickled result to a collector thread in the main process, which adds
them up.

What changed, each because the original cannot run or cannot be timed as written:
- Python 3: pickle for cPickle, range for xrange, print().
- `slice(i, i+1<<10)` parses as slice(i, (i+1)<<10) ('+' binds tighter than '<<'); the slice is
  now slice(i, i + SLICE), SLICE being a parameter (the benchmark's slice sizes).
- The array is the benchmark's existing file, mapped read-only, not created and filled here.
- The ipc endpoints live in a private temporary directory, not in the working directory.
- Each worker sends one hello to the collector before the clock starts: PUSH round-robins only
  over peers already connected, so a worker that connects late would otherwise get nothing.
- The same workers serve several timed runs; a None slice ends them (the seed's loop never ends).
"""
import multiprocessing
import os
import pickle
import shutil
import tempfile
import threading

import zmq

import common

mdata = None  # the memmap; set before the workers fork, as in the seed


def sumslice(queue_ep, result_ep):
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    push = ctx.socket(zmq.PUSH)
    pull.connect(queue_ep)
    push.connect(result_ep)
    push.send(pickle.dumps("hello"))
    while True:
        s = pickle.loads(pull.recv())
        if s is None:
            break
        push.send(pickle.dumps(mdata[s].sum()))
    push.close(linger=1000)
    pull.close()
    ctx.term()


def main():
    global mdata
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--array", required=True, help="path of the float32 array")
    p.add_argument("--slice-elems", type=int, required=True)
    a = p.parse_args()
    mdata = common.open_array(a.array)
    slice_len = a.slice_elems
    starts = range(0, len(mdata), slice_len)

    tmp = tempfile.mkdtemp(prefix="zwq-bench-seed-")
    queue_ep, result_ep = "ipc://%s/tmpqueue" % tmp, "ipc://%s/tmpresult" % tmp
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    res = ctx.socket(zmq.PULL)
    push.bind(queue_ep)
    res.bind(result_ep)
    fork = multiprocessing.get_context("fork")
    processes = [fork.Process(target=sumslice, args=(queue_ep, result_ep)) for _ in range(a.workers)]
    for proc in processes:
        proc.start()
    for _ in processes:
        pickle.loads(res.recv())  # hello

    total = [None]

    def collect():
        total[0] = sum(pickle.loads(res.recv()) for _ in starts)

    def one_run():
        collector = threading.Thread(target=collect)
        collector.start()
        for i in starts:
            push.send(pickle.dumps(slice(i, i + slice_len)))
        collector.join()
        return float(total[0])

    try:
        seconds, value = common.timed_runs(a.runs, one_run)
    finally:
        for _ in processes:
            push.send(pickle.dumps(None))
        for proc in processes:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
        push.close(linger=0)
        res.close(linger=0)
        ctx.term()
        shutil.rmtree(tmp, ignore_errors=True)
    common.emit("seed_pyzmq", seconds, value=value, slices=len(starts), workers=a.workers)


if __name__ == "__main__":
    main()
