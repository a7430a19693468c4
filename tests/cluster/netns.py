"""A small cluster on this machine: Linux network namespaces joined by veth pairs, one namespace per host, each
process started in its host's namespace with `ip netns exec`. Root only.

Topology (addresses are private to the namespaces, so two runs at once do not collide):

    core namespace: PostgreSQL :5432, Redis :6379, moto S3 :5000, uvicorn :8000, a cpu worker with Celery beat
        veth <tag>ca 10.250.1.1/24  <---->  10.250.1.2/24 <tag>ha   <tag>-a namespace: a gpu worker
        veth <tag>cb 10.250.2.1/24  <---->  10.250.2.2/24 <tag>hb   <tag>-b namespace: a gpu worker

A host's processes also get a UTS namespace with a hostname of its own (host-a-<tag>), so a worker names itself
gpu@%h as on a real machine.

The test process stays in the root namespace; what it opens inside a namespace it opens under `inside(name)`,
which moves only its calling thread there (setns(2)), so its sockets too stay in namespaces the test made.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

SUBNETS = {"a": "10.250.1", "b": "10.250.2"}  # host -> its /24 on the link to the core
PORTS = {"postgres": 5432, "redis": 6379, "s3": 5000, "web": 8000}


def unavailable() -> str | None:
    """Why this machine cannot run the cluster, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth links)"
    if not all(shutil.which(tool) for tool in ("ip", "setpriv", "unshare")):
        return "needs iproute2's ip and util-linux's setpriv and unshare"
    probe = f"dcprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if not postgres_bin():
        return "needs the PostgreSQL server binaries (initdb, postgres)"
    return None


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def inside(netns: str):
    """Sockets this thread opens in the block belong to `netns` (setns(2) moves the calling thread only; a socket
    keeps its namespace after the block)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        _setns(there)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)
        os.close(there)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Cluster:
    """The namespaces, links and processes of one run; stop() undoes everything, whatever was made."""

    def __init__(self, base: Path):
        self.tag = f"dc{os.getpid()}"
        self.base = base
        self.core = f"{self.tag}-core"
        self.hosts = {name: f"{self.tag}-{name}" for name in SUBNETS}
        self.namespaces: list[str] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    # --- the network ---------------------------------------------------------------------------------------

    def build(self) -> None:
        """The core and host namespaces, each host joined to the core by a veth pair of its own."""
        for netns in (self.core, *self.hosts.values()):
            ip("netns", "add", netns)
            self.namespaces.append(netns)
            ip("-n", netns, "link", "set", "lo", "up")
        for name, host in self.hosts.items():
            core_end, host_end = self.link(name), f"{self.tag}h{name}"
            ip("link", "add", core_end, "netns", self.core, "type", "veth", "peer", "name", host_end, "netns", host)
            ip("-n", self.core, "addr", "add", f"{SUBNETS[name]}.1/24", "dev", core_end)
            ip("-n", host, "addr", "add", f"{SUBNETS[name]}.2/24", "dev", host_end)
            ip("-n", self.core, "link", "set", core_end, "up")
            ip("-n", host, "link", "set", host_end, "up")

    def link(self, host: str) -> str:
        """The core's end of the veth pair to `host` (interface names are at most 15 characters)."""
        return f"{self.tag}c{host}"

    def cut(self, host: str) -> None:
        """Take the link between the core and `host` down: from then on no packet crosses it either way."""
        ip("-n", self.core, "link", "set", self.link(host), "down")

    def restore(self, host: str) -> None:
        ip("-n", self.core, "link", "set", self.link(host), "up")

    def core_address(self, host: str | None) -> str:
        """The core's address as `host` reaches it (None: a process in the core itself)."""
        return "127.0.0.1" if host is None else f"{SUBNETS[host]}.1"

    # --- processes -----------------------------------------------------------------------------------------

    def hostname(self, host: str) -> str:
        return f"host-{host}-{self.tag}"

    def spawn(
        self, name: str, netns: str, argv: list[str], env: dict[str, str], *, user=None, hostname=None, cwd=None
    ) -> subprocess.Popen:
        """Start `argv` in `netns` (ip netns exec; then setpriv for `user`; or a UTS namespace named `hostname`, as a
        host of its own is: all exec, so the pid is the program's), in a process group of its own, its output in
        base/<name>.log."""
        drop = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"] if user else []
        named = ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', hostname] if hostname else []
        self.logs[name] = self.base / f"{name}.log"
        with open(self.logs[name], "wb") as log:
            self.procs[name] = subprocess.Popen(
                ["ip", "netns", "exec", netns, *drop, *named, *argv], env=env, cwd=cwd, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self.procs[name]

    def kill(self, name: str) -> None:
        """SIGKILL a process and everything in its group (a worker's pool, the web server's helpers)."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=30)

    def wait_for_port(self, name: str, port: int, timeout: float = 60) -> None:
        """Return once a process in the core accepts connections on `port` (each try a real connect)."""
        deadline = time.monotonic() + timeout
        while True:
            proc = self.procs[name]
            assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{self.tail(name)}"
            with inside(self.core), socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            assert time.monotonic() < deadline, f"{name} did not listen on {port} in {timeout}s:\n{self.tail(name)}"
            time.sleep(0.05)  # between connection attempts only

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs.get(name)
        return path.read_text(errors="replace")[-chars:] if path and path.exists() else ""

    def stop(self) -> None:
        """Every process killed (PostgreSQL told to stop at once first, so it removes its shared memory), then the
        namespaces deleted, which deletes their veth links."""
        postgres = self.procs.get("postgres")
        if postgres is not None and postgres.poll() is None:
            postgres.send_signal(signal.SIGQUIT)  # immediate shutdown
            with contextlib.suppress(subprocess.TimeoutExpired):
                postgres.wait(timeout=10)
        for name in reversed(list(self.procs)):
            self.kill(name)
        for netns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        self.namespaces.clear()
