"""Hardening (issue 6): one server per data directory, cross-protocol
requests, file-descriptor exhaustion, idle-client timeouts."""
import subprocess

from harness import VexLakeServer


def vset_many(client, prefix, n):
    for i in range(n):
        assert client.execute_command("VSET", f"{prefix}:{i}", f"[{i}, 1]") == "OK"


def test_second_server_on_same_dir_is_refused(vexlake, tmp_path):
    a = vexlake(["--metric", "l2"])
    c = a.client()
    vset_many(c, "a", 50)

    b = VexLakeServer(tmp_path / "second", data_dir=a.dir)
    p = subprocess.run(b.command_line(), capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert f"data directory {a.dir} is locked by another process (pid {a.proc.pid})" in out

    # The owner is unaffected: its writes before and after a SAVE survive.
    assert c.execute_command("SAVE") in (True, "OK")
    vset_many(c, "b", 50)
    c.close()
    assert a.stop() == 0
    a.start()
    assert a.client().dbsize() == 100
    assert a.stop() == 0

    # Once the owner is gone the directory is free again.
    b.start()
    assert b.client().dbsize() == 100
