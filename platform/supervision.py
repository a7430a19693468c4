"""Process supervision for the embedded stack: start children, restart the ones that die, stop them all.

A child that exits on its own (killed, crashed, or just gone) is restarted after a pause that doubles with each
exit in a row that came soon after its start (1 s, 2 s, 4 s ... up to 30 s). A child that stayed up for a while
starts a new count. After too many quick exits in a row the supervisor gives up: it stops every child and
returns a non-zero code, so a broken setup does not restart forever. Only the dead child is touched: the web
server keeps serving while a worker restarts.

Standard library only. Imported by platform/embedded.py, which runs as a file (platform/ is not a package).
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

STOP_GRACE_S = 10  # how long a child may take to shut down after SIGTERM before it is killed
TICK_S = 0.2  # how often the supervisor looks at its children
LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None


def log(message: str) -> None:
    """Print one launcher line, flushed so it interleaves in order with the children's output."""
    print(f"[distillery] {message}", flush=True)


def exit_status(returncode: int) -> int:
    """A child's return code as a shell would report it: killed by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(returncode: int) -> str:
    """How a child ended, for the log: "killed by SIGKILL" or "exited with code 3"."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def spawn(
    cmd: list[str], env: dict[str, str] | None = None, *, nice: int = 0, cpus: set[int] | None = None, **kwargs
) -> subprocess.Popen:
    """Start a child in a process group of its own, `nice` added to its niceness and pinned to `cpus` if given.

    A group of its own: a terminal's Ctrl-C reaches only the launcher, and the child's own children (Celery's
    pool) can be signalled with it. The same session as the launcher, not a new one: Linux's autogroup
    scheduler shares the CPU between sessions first, so a child in a session of its own would get as much CPU
    as the web server whatever its niceness.
    """

    def prepare() -> None:  # in the child, between fork and exec: inherited by everything it starts
        if LIBC is not None:
            LIBC.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG: SIGTERM if the launcher dies (kill -9)
        if nice:
            os.nice(nice)
        if cpus:
            os.sched_setaffinity(0, cpus)

    # stdin from /dev/null: a process of a background group that reads the terminal would be stopped.
    return subprocess.Popen(cmd, env=env, process_group=0, preexec_fn=prepare, stdin=subprocess.DEVNULL, **kwargs)


def kill_group(pid: int, sig: int) -> None:
    """Signal a child's process group (the child and what it started), if any of it is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_children(procs: dict[str, subprocess.Popen], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM every child's process group, wait up to `grace` seconds in all, then SIGKILL the stragglers."""
    for proc in procs.values():
        kill_group(proc.pid, signal.SIGTERM)  # the group: Celery's pool processes go too
    deadline = time.monotonic() + grace
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop within {grace:g}s; killing it")
            kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
        kill_group(proc.pid, signal.SIGKILL)  # what it started and left behind


class RestartPolicy:
    """When to restart a child that exited, and when to give up."""

    def __init__(
        self,
        first_delay: float = 1.0,  # seconds before the first restart
        max_delay: float = 30.0,  # seconds: the pause doubles with each quick exit in a row, up to this
        stable_after: float = 60.0,  # seconds up after which an exit no longer counts as quick
        max_quick_exits: int = 7,  # quick exits in a row after which the supervisor gives up
    ):
        if first_delay < 0 or max_delay < first_delay or stable_after <= 0 or max_quick_exits < 1:
            raise ValueError(
                "RestartPolicy: need 0 <= first_delay <= max_delay, stable_after > 0, max_quick_exits >= 1"
            )
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.max_quick_exits = max_quick_exits

    def delay(self, quick_exits: int) -> float:
        """Seconds to wait before restarting a child that has exited quickly `quick_exits` times in a row."""
        return min(self.max_delay, self.first_delay * 2 ** max(0, quick_exits - 1))


class Child:
    """One supervised process: how to start it, the running process, and its count of quick exits."""

    def __init__(self, name: str, start: Callable[[], subprocess.Popen], *, stop_last: bool = False):
        self.name = name
        self.start = start  # returns a running process, or raises when it could not be started
        self.stop_last = stop_last  # stopped after the others (Redis: the workers still talk to it while stopping)
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.quick_exits = 0
        self.restart_at: float | None = None  # while it waits to be restarted


class Supervisor:
    """Runs children, restarts the ones that exit, and stops them all on SIGINT/SIGTERM or on giving up."""

    def __init__(self, policy: RestartPolicy | None = None):
        self.policy = policy or RestartPolicy()
        self.children: list[Child] = []

    def start(self, child: Child) -> Child:
        """Start a child now and supervise it from then on; raises when it cannot be started."""
        self._launch(child)
        self.children.append(child)
        return child

    def _launch(self, child: Child) -> None:
        child.proc = child.start()
        child.started_at = time.monotonic()
        child.restart_at = None
        log(f"started {child.name} (pid {child.proc.pid})")

    def run(self, on_tick: Callable[[], bool] | None = None) -> int:
        """Supervise until SIGINT/SIGTERM (0) or until a child exits too often (its code, or 1); stop everything.

        on_tick, if given, is called every loop until it returns True (used to announce the URL once ready).
        """
        received: list[int] = []
        previous = {
            sig: signal.signal(sig, lambda signum, _frame: received.append(signum))
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        failed: int | None = None
        try:
            while not received and failed is None:
                failed = self._tick()
                if on_tick is not None and on_tick():
                    on_tick = None
                time.sleep(TICK_S)
        finally:
            if received:
                log(f"{signal.Signals(received[0]).name} received; stopping")
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return failed if failed is not None else 0

    def _tick(self) -> int | None:
        """One look at every child: note the ones that exited, restart the ones whose pause is over.

        Returns the stack's exit code when a child has exited too many times in a row, else None.
        """
        for child in self.children:
            if child.restart_at is None:
                code = child.proc.poll()
                if code is not None:
                    kill_group(child.proc.pid, signal.SIGKILL)  # what it left behind: a killed worker's pool
                    up = time.monotonic() - child.started_at
                    how = f"{child.name} (pid {child.proc.pid}) {describe_exit(code)} after {up:.1f}s"
                    if self._exited(child, how, up):
                        return exit_status(code) or 1
            elif time.monotonic() >= child.restart_at:
                try:
                    self._launch(child)
                except Exception as exc:  # a start that fails (Redis that never answers) is a quick exit
                    if self._exited(child, f"{child.name} did not start ({exc})", 0.0):
                        return 1
        return None

    def _exited(self, child: Child, how: str, up: float) -> bool:
        """Count an exit after `up` seconds and schedule the restart; True when this exit is one too many."""
        child.quick_exits = child.quick_exits + 1 if up < self.policy.stable_after else 0
        if child.quick_exits >= self.policy.max_quick_exits:
            log(
                f"{how}: {child.quick_exits} quick exits in a row (each within {self.policy.stable_after:g}s "
                "of its start); giving up and stopping"
            )
            return True
        delay = self.policy.delay(child.quick_exits)
        child.restart_at = time.monotonic() + delay
        log(f"{how}; restarting it in {delay:g}s (quick exits in a row: {child.quick_exits})")
        return False

    def stop(self) -> None:
        """Stop every running child: the others first, then those marked stop_last (Redis)."""
        for last in (False, True):
            procs = {c.name: c.proc for c in self.children if c.stop_last == last and c.proc is not None}
            stop_children(procs)

    def pids(self) -> dict[str, int]:
        """The running children's pids by name."""
        return {c.name: c.proc.pid for c in self.children if c.proc is not None and c.restart_at is None}
