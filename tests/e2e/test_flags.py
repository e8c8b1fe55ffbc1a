"""Command-line flags: --help, unknown flags and bad values (exit code 2),
and runtime failures (exit code 1)."""
import socket
import subprocess

import pytest

from harness import free_port, server_binary


def run(*args, timeout=10):
    return subprocess.run([str(server_binary()), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(flag):
    p = run(flag)
    assert p.returncode == 0
    assert p.stdout.startswith("Usage: vexlake-server")
    for opt in ("--port", "--bind", "--dir", "--metric", "--appendfsync", "--threads",
                "--maxclients", "--help"):
        assert opt in p.stdout, opt


def test_help_wins_over_other_flags(tmp_path):
    p = run("--port", "1", "--help")
    assert p.returncode == 0 and "Usage" in p.stdout


@pytest.mark.parametrize("args,match", [
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["--port", "1", "--verbose"], "unknown option '--verbose'"),
    (["port"], "unknown option 'port'"),
    (["-p", "6379"], "unknown option '-p'"),
])
def test_unknown_flag(args, match):
    p = run(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert match in p.stderr
    assert "--help" in p.stderr


@pytest.mark.parametrize("args,match", [
    (["--port", "abc"], "--port wants a number"),
    (["--port", "70000"], "--port wants a number"),
    (["--port", "-1"], "--port wants a number"),
    (["--port", ""], "--port wants a number"),
    (["--port", "12x"], "--port wants a number"),
    (["--metric", "foo"], "--metric wants l2, cosine or ip, got 'foo'"),
    (["--metric", "L2 "], "--metric wants"),
    (["--appendfsync", "sometimes"], "--appendfsync wants always, everysec or no"),
    (["--threads", "0"], "--threads wants a number from 1 to 256"),
    (["--threads", "1000"], "--threads wants"),
    (["--maxclients", "0"], "--maxclients wants"),
    (["--dir", ""], "--dir wants"),
    (["--port"], "option '--port' needs a value"),
    (["--metric"], "needs a value"),
])
def test_bad_values(args, match):
    p = run(*args)
    assert p.returncode == 2, (args, p.returncode, p.stderr)
    assert match in p.stderr, p.stderr
    assert p.stdout == ""


def test_port_in_use_exits_1(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = run("--port", str(port), "--dir", str(tmp_path / "d"))
    assert p.returncode == 1
    assert "cannot listen" in (p.stdout + p.stderr)


def test_bad_bind_address_exits_1(tmp_path):
    p = run("--port", str(free_port()), "--bind", "not an address", "--dir", str(tmp_path / "d"))
    assert p.returncode == 1
    assert "bind address" in (p.stdout + p.stderr)


def test_unusable_dir_exits_1(tmp_path):
    f = tmp_path / "file"
    f.write_text("not a directory")
    p = run("--port", str(free_port()), "--dir", str(f / "sub"))
    assert p.returncode == 1
    assert "data directory" in (p.stdout + p.stderr)


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_metric_flag(vexlake, metric):
    srv = vexlake(["--metric", metric])
    assert srv.client().info("vectors")["metric"] == metric


@pytest.mark.parametrize("mode", ["always", "everysec", "no"])
def test_appendfsync_flag(vexlake, mode):
    srv = vexlake(["--appendfsync", mode, "--threads", "1"])
    info = srv.client().info()
    assert info["appendfsync"] == mode
    assert info["search_threads"] == 1


def test_bind_and_maxclients_flags(vexlake):
    srv = vexlake(["--maxclients", "7"])
    info = srv.client().info()
    assert info["maxclients"] == 7
    assert info["tcp_port"] == srv.port
