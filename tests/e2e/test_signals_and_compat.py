"""Regression tests for server bugs found by this suite (they fail until fixed).

1. SIGTERM kills the process instead of shutting it down cleanly: the search
   worker threads (and the WAL/lake threads) are created before
   watch_signals() blocks SIGINT/SIGTERM in src/server/server.c, so they
   inherit an unblocked mask and the kernel delivers a process-directed
   SIGTERM to one of them with its default action.  Exit status 143 / -15,
   no "bye" in the log, no final flush.
2. COMMAND entries have 6 fields (Redis 2.8 layout) while INFO claims
   redis_version 7.4.0; redis-py's RESP3 parser reads the 10-field Redis 7
   layout, so Redis(protocol=3).command() raises IndexError.
"""
import signal

from test_commands import NAMES


def test_sigterm_exits_cleanly(server):
    """SIGTERM is documented (server.c) to shut down cleanly: log "bye", exit 0."""
    server.client().execute_command("VSET", "a", "[1]")
    rc = server.stop()
    assert rc == 0, f"SIGTERM: exit status {rc} (a negative value is the killing signal)\n" + \
        server.log_tail()
    assert "bye" in server.log_tail()
    server.restart()
    assert server.client().execute_command("VGET", "a") == "[1.000000]"


def test_sigterm_with_every_thread_busy(vexlake):
    """Same with one search thread and everysec (more threads to inherit the mask)."""
    server = vexlake(["--threads", "1", "--appendfsync", "everysec"])
    r = server.client()
    r.execute_command("VSET", "a", "[1, 2]")
    server.proc.send_signal(signal.SIGTERM)
    rc = server.proc.wait(15)
    assert rc == 0, f"exit status {rc}\n{server.log_tail()}"


def test_command_parsed_by_redis_py(server, proto):
    """r.command() must parse.  redis-py's RESP3 parser (parse_command_resp3)
    reads the Redis 7 layout of 10 fields per command (acl categories, tips,
    key specs, subcommands); the server's 6-field entries raise IndexError."""
    r = server.client(proto)
    cmds = r.command()
    assert NAMES <= set(cmds)
    assert cmds["vset"]["arity"] == -3 and "write" in cmds["vset"]["flags"]
    assert cmds["vget"]["first_key_pos"] == 1
