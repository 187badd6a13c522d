#!/usr/bin/env python3
"""Exits 0 and prints the versions when the peers can run (numpy and pyzmq importable)."""
import json
import platform
import sys

try:
    import numpy
    import zmq
except ImportError as e:  # the peers are optional: zwq-bench reports them as skipped
    print(json.dumps({"ok": False, "reason": str(e)}))
    sys.exit(1)
print(json.dumps({"ok": True, "python": platform.python_version(), "numpy": numpy.__version__,
                  "pyzmq": zmq.__version__, "libzmq": zmq.zmq_version()}))
