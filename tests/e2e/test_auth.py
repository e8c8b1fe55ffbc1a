"""Access control end to end: --requirepass / --requirepass-file, AUTH and
HELLO AUTH, ACL users from --aclfile (categories, collection patterns, off
users, ACL LOAD), and protected mode's start warning, with redis-py (RESP2
and RESP3) and redis-cli.  A non-loopback client is made inside a private
network namespace (`unshare -n`, only lo, so no packet leaves it), and
tests/unit/test_auth.c refuses fake peers at dispatch."""
import hashlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from harness import REDIS_CLI, free_port, server_binary

PW = "s3cret-pw"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOPASS_AUTH = ("ERR AUTH <password> called without any password configured for the default "
               "user. Are you sure your configuration is correct?")


def cli(srv, *args, check=True):
    cmd = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(srv.port), *[str(a) for a in args]]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
    if check:
        assert p.returncode == 0, (cmd, p.stdout, p.stderr)
    return p


def run_server(*args):
    return subprocess.run([str(server_binary()), *args], capture_output=True, text=True,
                          timeout=10, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------- passwords --

def test_requirepass_gates_every_command_but_auth_hello_quit(vexlake):
    srv = vexlake(["--requirepass", PW])
    with srv.raw() as r:
        for cmd in (["PING"], ["ECHO", "x"], ["VSET", "k", "[1, 2]"], ["VGET", "k"], ["DBSIZE"],
                    ["VSEARCH", "[1, 2]", "1"], ["CLEAR"], ["SAVE"], ["BGSAVE"], ["INFO"],
                    ["CONFIG", "GET", "*"], ["CLIENT", "ID"], ["SELECT", "0"], ["COMMAND"],
                    ["ACL", "WHOAMI"], ["VERSIONS"], ["LASTSAVE"], ["SHUTDOWN"]):
            assert r.command(*cmd) == NOAUTH, cmd
        assert r.command("AUTH", "wrong") == WRONGPASS
        assert r.command("AUTH", "default", "wrong") == WRONGPASS
        assert r.command("AUTH", PW[:-1]) == WRONGPASS
        assert r.command("AUTH", "nobody", PW) == WRONGPASS
        assert r.command("PING") == NOAUTH
        assert r.command("AUTH", PW) == "OK"
        assert r.command("VSET", "k", "[1, 2]") == "OK"
        assert r.command("ACL", "WHOAMI") == b"default"
        assert r.command("AUTH", "wrong") == WRONGPASS  # keeps the login
        assert r.command("DBSIZE") == 1
    with srv.raw() as r:
        assert r.command("QUIT") == "OK"
        assert r.closed_by_peer()
    assert srv.alive()


def test_redis_py_with_password(vexlake, proto):
    srv = vexlake(["--requirepass", PW])
    c = srv.client(protocol=proto, password=PW)
    assert c.execute_command("VSET", "a", "[1, 0]") == "OK"
    assert c.execute_command("VGET", "a") == "[1.000000, 0.000000]"
    c.close()
    c = srv.client(protocol=proto, username="default", password=PW)
    assert c.execute_command("ACL", "WHOAMI") == "default"
    c.close()
    with pytest.raises(redis.exceptions.AuthenticationError, match="invalid username-password pair"):
        srv.client(protocol=proto, password="nope").ping()
    with pytest.raises(redis.exceptions.AuthenticationError, match="uthenticat"):
        srv.client(protocol=proto).execute_command("VGET", "a")


def test_hello_auth_checks_the_password_and_switches_only_on_success(vexlake):
    srv = vexlake(["--requirepass", PW])
    with srv.raw() as r:
        assert r.command("HELLO", "3").startswith("NOAUTH HELLO must be called with the client "
                                                  "already authenticated")
        assert r.command("HELLO", "3", "AUTH", "default", "wrong") == WRONGPASS
        assert r.command("HELLO", "3", "AUTH", "bob", PW) == WRONGPASS
        assert r.command("AUTH", PW) == "OK"
        assert isinstance(r.command("HELLO"), list)  # still RESP2: the map is flat
    with srv.raw() as r:
        reply = r.command("HELLO", "3", "AUTH", "default", PW, "SETNAME", "app")
        assert isinstance(reply, dict) and reply[b"proto"] == 3
        assert r.command("CLIENT", "GETNAME") == b"app"


def test_without_a_password_only_the_default_user_exists(server):
    """Defaults: everything allowed as before, but HELLO AUTH no longer
    accepts any user name (it accepted 'HELLO 3 AUTH anyone anything')."""
    with server.raw() as r:
        assert r.command("HELLO", "3", "AUTH", "someone", "anything") == WRONGPASS
        assert r.command("AUTH", "anything") == NOPASS_AUTH
        assert r.command("AUTH", "someone", "anything") == WRONGPASS
        assert isinstance(r.command("HELLO", "3", "AUTH", "default", "anything"), dict)
        assert r.command("AUTH", "default", "anything") == "OK"  # nopass: any password
        assert r.command("VSET", "k", "[1, 2]") == "OK"
        assert r.command("ACL", "LIST") == [b"user default on nopass ~* +@all"]
    c = server.client(protocol=3)
    assert c.execute_command("DBSIZE") == 1


@pytest.mark.parametrize("content", [PW + "\n", PW, PW + "\r\n", PW + "\nsecond line\n"])
def test_requirepass_file(vexlake, tmp_path, content):
    f = tmp_path / "pw"
    f.write_text(content)
    srv = vexlake(["--requirepass-file", str(f)])
    cmdline = open(f"/proc/{srv.proc.pid}/cmdline", "rb").read()
    assert PW.encode() not in cmdline
    with srv.raw() as r:
        assert r.command("PING") == NOAUTH
        assert r.command("AUTH", PW + "\n") == WRONGPASS
        assert r.command("AUTH", PW) == "OK"


@pytest.mark.parametrize("content,match", [
    (None, "cannot read"),
    ("", "empty"),
    ("\nsecond\n", "empty"),
    ("\r\n", "empty"),
    ("x" * 600, "longer than 511 bytes"),
])
def test_requirepass_file_refused(tmp_path, content, match):
    f = tmp_path / "pw"
    if content is not None:
        f.write_text(content)
    p = run_server("--port", str(free_port()), "--dir", str(tmp_path / "d"),
                   "--requirepass-file", str(f))
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "--requirepass-file" in p.stderr and match in p.stderr, p.stderr


def test_requirepass_bad_values_are_not_echoed(tmp_path):
    p = run_server("--requirepass", "y" * 600)
    assert p.returncode == 2 and "--requirepass wants" in p.stderr
    assert "yyyy" not in p.stderr
    p = run_server("--requirepass", "")
    assert p.returncode == 2


def test_config_get_does_not_reveal_the_password(vexlake):
    srv = vexlake(["--requirepass", PW])
    c = srv.client(password=PW)
    assert c.config_get("requirepass") == {}
    everything = c.config_get("*")
    assert everything and PW not in str(everything)
    assert PW not in c.info().__repr__()


def test_redis_cli_passwords(vexlake):
    srv = vexlake(["--requirepass", PW])
    assert cli(srv, "PING").stdout.strip() == NOAUTH
    p = cli(srv, "-a", PW, "PING")
    assert p.stdout == "PONG\n"
    assert "Using a password with '-a'" in p.stderr
    p = cli(srv, "-a", PW, "--no-auth-warning", "VSET", "a", "[1, 2]")
    assert p.stdout == "OK\n" and p.stderr == ""
    p = cli(srv, "--user", "default", "--pass", PW, "--no-auth-warning", "DBSIZE")
    assert p.stdout == "1\n"
    p = cli(srv, "-a", "wrong", "--no-auth-warning", "PING")
    assert "WRONGPASS" in p.stdout + p.stderr
    p = cli(srv, "-3", "-a", PW, "--no-auth-warning", "VGET", "a")
    assert p.stdout == "[1.000000, 2.000000]\n"


# --------------------------------------------------------------------- ACL --

ACL = """\
# users of the tests
user default off
user admin on >adminpw ~* +@all
user reader on >readpw ~default +@read
user writer on >writepw ~* +@read +@write -clear
user other on >otherpw ~vec* allcommands
user disabled off >offpw ~* +@all
"""


def sha(pw):
    return hashlib.sha256(pw.encode()).hexdigest()


@pytest.fixture
def aclsrv(vexlake, tmp_path):
    path = tmp_path / "users.acl"
    path.write_text(ACL)
    srv = vexlake(["--aclfile", str(path)])
    srv.acl_path = path
    return srv


def noperm_cmd(user, cmd):
    return f"NOPERM User {user} has no permissions to run the '{cmd}' command"


def test_acl_users_categories_and_collections(aclsrv, proto):
    admin = aclsrv.client(protocol=proto, username="admin", password="adminpw")
    assert admin.execute_command("VSET", "a", "[1, 0]") == "OK"
    assert admin.execute_command("SAVE") is True

    reader = aclsrv.client(protocol=proto, username="reader", password="readpw")
    assert reader.execute_command("VGET", "a") == "[1.000000, 0.000000]"
    assert reader.execute_command("VSEARCH", "[1, 0]", "1") == ["a"]
    assert reader.execute_command("DBSIZE") == 1
    assert reader.ping() is True  # connection commands: always allowed
    for cmd, name in ((("VSET", "b", "[0, 1]"), "vset"), (("VDEL", "a"), "vdel"),
                      (("SAVE",), "save"), (("CONFIG", "GET", "*"), "config"),
                      (("ACL", "LOAD"), "acl|load"), (("SHUTDOWN",), "shutdown")):
        with pytest.raises(redis.exceptions.NoPermissionError) as e:
            reader.execute_command(*cmd)
        assert str(e.value) == noperm_cmd("reader", name)[len("NOPERM "):]

    writer = aclsrv.client(protocol=proto, username="writer", password="writepw")
    assert writer.execute_command("VSET", "b", "[0, 1]") == "OK"
    with pytest.raises(redis.exceptions.NoPermissionError, match="'clear' command"):
        writer.execute_command("CLEAR")

    other = aclsrv.client(protocol=proto, username="other", password="otherpw")
    for cmd in (("VGET", "a"), ("VSET", "c", "[1, 1]"), ("DBSIZE",), ("CLEAR",)):
        with pytest.raises(redis.exceptions.NoPermissionError,
                           match="^No permissions to access a key$"):
            other.execute_command(*cmd)
    assert other.execute_command("LASTSAVE")  # not a collection command

    with pytest.raises(redis.exceptions.AuthenticationError, match="invalid username-password pair"):
        aclsrv.client(protocol=proto, username="disabled", password="offpw").ping()
    with pytest.raises(redis.exceptions.AuthenticationError):  # default is off
        aclsrv.client(protocol=proto).ping()
    assert admin.execute_command("DBSIZE") == 2


def test_acl_introspection(aclsrv):
    with aclsrv.raw() as r:
        assert r.command("PING") == NOAUTH
        assert r.command("AUTH", "reader", "readpw") == "OK"
        assert r.command("ACL", "WHOAMI") == b"reader"
        assert r.command("ACL", "CAT") == [b"read", b"write", b"admin", b"connection"]
        assert r.command("ACL", "CAT", "read") == [b"dbsize", b"vget", b"vsearch", b"versions"]
        assert b"acl|load" in r.command("ACL", "CAT", "admin")
        assert r.command("ACL", "CAT", "nope") == "ERR Unknown category 'nope'"
        assert r.command("ACL", "LIST") == noperm_cmd("reader", "acl|list")
        assert r.command("AUTH", "admin", "adminpw") == "OK"
        assert r.command("ACL", "USERS") == [b"admin", b"default", b"disabled", b"other",
                                             b"reader", b"writer"]
        lines = [x.decode() for x in r.command("ACL", "LIST")]
        assert lines == [
            f"user admin on #{sha('adminpw')} ~* +@all",
            "user default off -@all",
            f"user disabled off #{sha('offpw')} ~* +@all",
            f"user other on #{sha('otherpw')} ~vec* +@all",
            f"user reader on #{sha('readpw')} ~default -@all +@read",
            f"user writer on #{sha('writepw')} ~* -@all +@read +@write -clear",
        ]
        assert not any("readpw" in line for line in lines)
        info = r.command("COMMAND", "INFO", "vset")[0]
        assert info[6] == ["@write"]


def test_acl_list_output_is_acl_file_text(vexlake, tmp_path):
    path = tmp_path / "users.acl"
    path.write_text(f"user app on #{sha('apppw')} ~default +@read +@write\n"
                    "user root on >rootpw ~* +@all -shutdown\n")
    srv = vexlake(["--aclfile", str(path)])
    app = srv.client(username="app", password="apppw")
    assert app.execute_command("VSET", "a", "[1]") == "OK"
    root = srv.client(username="root", password="rootpw")
    listing = root.execute_command("ACL", "LIST")
    assert f"user app on #{sha('apppw')} ~default -@all +@read +@write" in listing
    again = tmp_path / "again.acl"
    again.write_text("\n".join(listing) + "\n")
    srv.stop()
    srv.start(["--aclfile", str(again)])
    root = srv.client(username="root", password="rootpw")
    assert root.execute_command("ACL", "LIST") == listing
    assert srv.client(username="app", password="apppw").execute_command("DBSIZE") == 1


def test_acl_load(aclsrv, tmp_path):
    admin = aclsrv.client(username="admin", password="adminpw")
    reader = aclsrv.raw()
    assert reader.command("AUTH", "reader", "readpw") == "OK"
    writer = aclsrv.raw()
    assert writer.command("AUTH", "writer", "writepw") == "OK"
    other = aclsrv.raw()
    assert other.command("AUTH", "other", "otherpw") == "OK"
    assert reader.command("VSET", "a", "[1]") == noperm_cmd("reader", "vset")

    # A bad file: an error naming file, line and token; nothing changes.
    good = aclsrv.acl_path.read_text()
    aclsrv.acl_path.write_text(good + "user broken on +@reed\n")
    with pytest.raises(redis.exceptions.ResponseError) as e:
        admin.execute_command("ACL", "LOAD")
    msg = str(e.value)
    assert f"{aclsrv.acl_path}:8: rule '+@reed': unknown category 'reed'" in msg
    assert "no change to the previously active ACL rules was performed" in msg
    assert reader.command("VSET", "a", "[1]") == noperm_cmd("reader", "vset")
    assert writer.command("PING") == "PONG"

    # reader gains @write and a new password (stays logged in), writer is
    # removed and other turned off (both logged out: their connections close).
    aclsrv.acl_path.write_text(
        "user default off\n"
        "user admin on >adminpw ~* +@all\n"
        "user reader on >newpw ~default +@read +@write\n"
        "user other off >otherpw ~vec* allcommands\n")
    assert admin.execute_command("ACL", "LOAD") == "OK"
    assert reader.command("VSET", "a", "[1]") == "OK"
    assert reader.command("ACL", "WHOAMI") == b"reader"
    assert writer.closed_by_peer()
    assert other.closed_by_peer()
    assert admin.execute_command("ACL", "USERS") == ["admin", "default", "other", "reader"]
    with pytest.raises(redis.exceptions.AuthenticationError):
        aclsrv.client(username="reader", password="readpw").ping()
    assert aclsrv.client(username="reader", password="newpw").ping()
    for c in (reader, writer, other):
        c.close()

    # The caller's own user removed: it gets +OK, then is logged out.
    aclsrv.acl_path.write_text("user default on nopass ~* +@all\n")
    with aclsrv.raw() as r:
        assert r.command("AUTH", "admin", "adminpw") == "OK"
        assert r.command("ACL", "LOAD") == "OK"
        assert r.closed_by_peer()
    assert aclsrv.client().execute_command("DBSIZE") == 1  # default: nopass again


def test_client_info_shows_the_user(aclsrv):
    with aclsrv.raw() as r:
        assert r.command("AUTH", "reader", "readpw") == "OK"
        assert b" user=reader " in r.command("CLIENT", "INFO")


def test_client_info_with_a_long_name_reads_nothing_past_its_line(server):
    """CLIENT INFO used to send snprintf's would-be length from a 512-byte
    buffer: with a 2000-byte name, ~1.5 KB of the server's stack."""
    with server.raw() as r:
        assert r.command("CLIENT", "SETNAME", "n" * 2000) == "OK"
        info = r.command("CLIENT", "INFO")
        assert info.startswith(b"id=") and len(info) < 1024
        assert set(info[info.index(b"name=") + 5:]) == {ord("n")}


def test_acl_load_without_aclfile(server):
    with server.raw() as r:
        assert r.command("ACL", "LOAD").startswith(
            "ERR This VexLake instance is not configured to use an ACL file")


@pytest.mark.parametrize("content,match", [
    ("user x on +@reed\n", ":1: rule '+@reed': unknown category 'reed'"),
    ("user a on\n\nuser b on +vfrob\n", ":3: rule '+vfrob': unknown command 'vfrob'"),
    ("user a on\nuser a off\n", ":2: user 'a' is defined twice"),
    ("users a on\n", ":1: a line must start with 'user', got 'users'"),
    ("user a on -ping\n", ":1: rule '-ping': 'ping' is a connection command"),
    ("user a on #123\n", ":1: rule '#123': a password hash must be 64 hexadecimal digits"),
])
def test_bad_aclfile_exits_2(tmp_path, content, match):
    path = tmp_path / "users.acl"
    path.write_text(content)
    p = run_server("--port", str(free_port()), "--dir", str(tmp_path / "d"),
                   "--aclfile", str(path))
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert f"{path}{match}" in p.stderr, p.stderr


def test_aclfile_refusals(tmp_path):
    p = run_server("--port", str(free_port()), "--dir", str(tmp_path / "d"),
                   "--aclfile", str(tmp_path / "missing.acl"))
    assert p.returncode == 2 and "cannot read ACL file" in p.stderr
    path = tmp_path / "users.acl"
    path.write_text("user a on\n")
    p = run_server("--port", str(free_port()), "--dir", str(tmp_path / "d"),
                   "--aclfile", str(path), "--requirepass", "x")
    assert p.returncode == 2 and "do not mix" in p.stderr


def test_redis_cli_acl_user(aclsrv):
    p = cli(aclsrv, "--user", "reader", "--pass", "readpw", "--no-auth-warning", "VSET", "a",
            "[1]")
    assert p.stdout.strip() == noperm_cmd("reader", "vset")
    p = cli(aclsrv, "--user", "writer", "--pass", "writepw", "--no-auth-warning", "VSET", "a",
            "[1]")
    assert p.stdout == "OK\n"
    p = cli(aclsrv, "--user", "reader", "--pass", "readpw", "--no-auth-warning", "VGET", "a")
    assert p.stdout == "[1.000000]\n"
    p = cli(aclsrv, "--user", "disabled", "--pass", "offpw", "--no-auth-warning", "PING")
    assert "WRONGPASS" in p.stdout + p.stderr


# ---------------------------------------------------------- protected mode --

def log_of(srv):
    return srv.log_path.read_text()


def test_binding_everywhere_without_password_warns_and_serves_loopback(vexlake):
    srv = vexlake(["--bind", "0.0.0.0"])
    assert "listening on 0.0.0.0 with no password for the default user: protected mode is on" \
        in log_of(srv)
    c = srv.client()
    assert c.ping() is True
    assert c.execute_command("VSET", "a", "[1]") == "OK"


def test_protected_mode_off_warns_differently(vexlake):
    srv = vexlake(["--bind", "0.0.0.0", "--protected-mode", "no"])
    assert "protected mode off: anyone who can reach this port" in log_of(srv)
    assert srv.client().ping() is True


@pytest.mark.parametrize("args", [["--bind", "0.0.0.0", "--requirepass", PW],
                                  ["--protected-mode", "yes"], []])
def test_no_warning_with_a_password_or_on_loopback(vexlake, args):
    srv = vexlake(args)
    assert "no password for the default user" not in log_of(srv)


NETNS_IP = "192.0.2.2"  # TEST-NET-1, added to lo inside a private network namespace


def first_reply_then_eof(ip, port, payload=b"*1\r\n$4\r\nPING\r\n"):
    with socket.create_connection((ip, port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data, True
            data += chunk
            if data.endswith(b"\r\n") and not data.startswith(b"-DENIED"):
                return data, False


def protected_mode_checks_in_netns(binary, workdir):
    """Run inside `unshare -n` (a private network namespace with only lo):
    NETNS_IP on lo gives a client a non-loopback source address while no
    packet can leave the namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", NETNS_IP + "/32", "dev", "lo"], check=True)

    def serve(name, *args):
        d = Path(workdir) / name
        d.mkdir()
        port = free_port()
        log = open(d / "server.log", "wb")
        p = subprocess.Popen([binary, "--port", str(port), "--dir", str(d / "data"),
                              "--bind", "0.0.0.0", *args],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return p, port
            except OSError:
                time.sleep(0.02)
        p.kill()
        raise AssertionError(f"{name}: server did not start: {(d / 'server.log').read_text()}")

    procs = []
    try:
        p, port = serve("open")
        procs.append(p)
        data, closed = first_reply_then_eof(NETNS_IP, port)
        assert data.startswith(b"-DENIED VexLake is running in protected mode because protected "
                               b"mode is enabled and no password is set for the default user."), data
        assert data.endswith(b"\r\n") and data.count(b"\r\n") == 1 and closed, data
        assert first_reply_then_eof("127.0.0.1", port) == (b"+PONG\r\n", False)

        p, port = serve("pw", "--requirepass", PW)
        procs.append(p)
        assert first_reply_then_eof(NETNS_IP, port) == (b"-NOAUTH Authentication required.\r\n",
                                                        False)
        auth = b"*2\r\n$4\r\nAUTH\r\n$9\r\n" + PW.encode() + b"\r\n"
        assert first_reply_then_eof(NETNS_IP, port, auth)[0] == b"+OK\r\n"

        p, port = serve("off", "--protected-mode", "no")
        procs.append(p)
        assert first_reply_then_eof(NETNS_IP, port) == (b"+PONG\r\n", False)
    finally:
        for p in procs:
            p.kill()
            p.wait(10)


def netns_available():
    try:
        return subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not netns_available(), reason="needs root for a private network namespace")
def test_protected_mode_refuses_a_non_loopback_client(tmp_path):
    p = subprocess.run(["unshare", "-n", sys.executable, __file__, "--netns-checks",
                        str(server_binary()), str(tmp_path)],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout + p.stderr


def test_protected_mode_bad_value(tmp_path):
    p = run_server("--protected-mode", "maybe")
    assert p.returncode == 2 and "--protected-mode wants yes or no, got 'maybe'" in p.stderr


def test_help_lists_the_flags():
    out = run_server("--help").stdout
    for flag in ("--requirepass PASS", "--requirepass-file PATH", "--aclfile PATH",
                 "--protected-mode yes|no"):
        assert flag in out


if __name__ == "__main__" and sys.argv[1:2] == ["--netns-checks"]:
    protected_mode_checks_in_netns(sys.argv[2], sys.argv[3])
