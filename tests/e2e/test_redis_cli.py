"""The stock redis-cli (7.0) against the server: one-shot commands, a piped
session, and RESP3 (-3)."""
import os
import subprocess

import pytest

from harness import REDIS_CLI

pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_CLI), reason="redis-cli not installed")


def cli(server, *args, stdin=None, resp3=False, raw=False, timeout=15):
    cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(server.port)]
    if resp3:
        cmd.append("-3")
    if raw:
        cmd.append("--raw")
    cmd += [str(a) for a in args]
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, (cmd, p.stdout, p.stderr)
    return p.stdout


def test_ping(server):
    assert cli(server, "PING") == "PONG\n"
    assert cli(server, "PING", "hi there") == "hi there\n"
    assert cli(server, "ECHO", "x") == "x\n"


def test_vector_commands(server):
    assert cli(server, "VSET", "a", "[1, 0, 0]") == "OK\n"
    assert cli(server, "VSET", "b", "[0, 1, 0]") == "OK\n"
    assert cli(server, "VSET", "c", "[0.8, 0.2, 0]") == "OK\n"
    assert cli(server, "VGET", "a") == "[1.000000, 0.000000, 0.000000]\n"
    assert cli(server, "VGET", "nope") == "\n"  # nil prints as an empty line when piped
    assert cli(server, "DBSIZE") == "3\n"
    assert cli(server, "VSEARCH", "[1, 0, 0]", "2").split() == ["a", "c"]
    out = cli(server, "VSEARCH", "[1, 0, 0]", "3", "WITHSCORES").split()
    assert out[0::2] == ["a", "c", "b"]
    assert float(out[1]) == pytest.approx(0.0, abs=1e-6)
    assert float(out[5]) == pytest.approx(1.0, abs=1e-6)
    assert cli(server, "VDEL", "a") == "1\n"
    assert cli(server, "VDEL", "a") == "0\n"
    assert cli(server, "DBSIZE") == "2\n"
    assert cli(server, "CLEAR") == "OK\n"
    assert cli(server, "DBSIZE") == "0\n"


def test_info(server):
    cli(server, "VSET", "a", "[1, 2, 3, 4]")
    out = cli(server, "INFO")
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert fields["vectors"] == "1" and fields["dimension"] == "4"
    assert fields["metric"] == "cosine"
    assert "vexlake_version" in fields and "redis_version" in fields
    assert "# Vectors" in out
    out = cli(server, "INFO", "vectors")
    assert "vectors:1" in out and "# Server" not in out


def test_errors_are_printed(server):
    out = cli(server, "VSET", "a")
    assert out.startswith("(error) ERR wrong number of arguments for 'vset'") or \
        out.startswith("ERR wrong number of arguments for 'vset'"), out
    out = cli(server, "NOSUCHCMD", "x")
    assert "ERR unknown command 'NOSUCHCMD'" in out
    assert cli(server, "PING") == "PONG\n"


def test_piped_session(server):
    script = "\n".join([
        "PING",
        'VSET k1 "[1, 2, 3]"',
        'VSET k2 "[3, 2, 1]"',
        "VGET k1",
        "DBSIZE",
        'VSEARCH "[1, 2, 3]" 1',
        "VSET k3 [1,2]",
        "VDEL k2",
        "DBSIZE",
        "CLIENT SETNAME cli-session",
        "CLIENT GETNAME",
        "SELECT 0",
        "QUIT",
    ]) + "\n"
    # redis-cli prints an empty line after an error reply when not on a tty
    out = [line for line in cli(server, stdin=script).splitlines() if line]
    assert out[0] == "PONG"
    assert out[1] == "OK" and out[2] == "OK"
    assert out[3] == "[1.000000, 2.000000, 3.000000]"
    assert out[4] == "2"
    assert out[5] == "k1"
    assert "dimension mismatch: expected 3, got 2" in out[6]
    assert out[7] == "1"
    assert out[8] == "1"
    assert out[9] == "OK" and out[10] == "cli-session" and out[11] == "OK"
    assert cli(server, "DBSIZE") == "1\n"


def test_pipe_mode(server):
    """redis-cli --pipe: mass insertion speaks raw RESP."""
    lines = []
    for i in range(1000):
        args = ["VSET", f"p{i}", f"[{i}, 1, 2]"]
        lines.append("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args))
    p = subprocess.run([REDIS_CLI, "-p", str(server.port), "--pipe"], input="".join(lines),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "errors: 0, replies: 1000" in p.stdout
    assert cli(server, "DBSIZE") == "1000\n"


def test_resp3(server):
    assert cli(server, "PING", resp3=True) == "PONG\n"
    cli(server, "VSET", "a", "[1, 0]")
    cli(server, "VSET", "b", "[0, 1]")
    out = cli(server, "VSEARCH", "[1, 0]", "2", "WITHSCORES", resp3=True).split()
    assert out[0::2] == ["a", "b"], out
    assert float(out[1]) == pytest.approx(0.0, abs=1e-6)
    assert float(out[3]) == pytest.approx(1.0, abs=1e-6)
    assert cli(server, "VGET", "zzz", resp3=True) == "\n"
    out = cli(server, "HELLO", "3", resp3=True)
    assert "vexlake" in out and "proto" in out
    session = cli(server, stdin="PING\nVGET a\nDBSIZE\nINFO vectors\n", resp3=True).splitlines()
    assert session[0] == "PONG" and session[1] == "[1.000000, 0.000000]" and session[2] == "2"
    assert "metric:cosine" in session
