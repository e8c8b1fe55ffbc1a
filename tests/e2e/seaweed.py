"""A private SeaweedFS for tests that stop or restart the store on purpose.

The shared one that scripts/run-tests.sh starts (port 8333) is used by every
other S3 test, so it is never stopped here.  `OwnSeaweedFS` runs
scripts/seaweedfs.sh with SEAWEEDFS_PORT=<free port> (S3 on it, master,
volume and filer on the next three, gRPC at +10000) and SEAWEEDFS_DIR in
the test's temporary directory, so a stop keeps its data and a start brings
the same bucket back.
"""
from __future__ import annotations

import os
import random
import socket
import subprocess

from harness import REPO

SCRIPT = REPO / "scripts" / "seaweedfs.sh"


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_block() -> int:
    """P with P..P+3 and P+10000..P+10003 free on loopback."""
    for _ in range(200):
        p = random.randrange(20000, 45000)
        if all(_free(p + d) and _free(p + 10000 + d) for d in range(4)):
            return p
    raise RuntimeError("no free block of SeaweedFS ports")


class OwnSeaweedFS:
    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.port = free_port_block()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k != "VL_SEAWEEDFS_USER"}
        self.env.update(SEAWEEDFS_PORT=str(self.port), SEAWEEDFS_DIR=str(data_dir))

    def _run(self, verb: str, timeout: float):
        p = subprocess.run([str(SCRIPT), verb], env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"seaweedfs.sh {verb} failed: {p.stderr[-2000:]}")

    def start(self) -> "OwnSeaweedFS":
        self._run("start", 300)  # may build SeaweedFS on a clean machine
        return self

    def stop(self):
        self._run("stop", 60)
