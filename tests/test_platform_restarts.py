"""The launcher's supervisor (platform/supervision.py) on real processes: a child that exits is restarted after
a pause that doubles, a child that keeps dying makes it give up and stop the rest, a stable run starts the count
again, what a killed child left behind is killed, and SIGTERM stops everything."""

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# platform/ is not a package: the launcher loads the module as a file, and so do the tests.
supervision = __import__("runpy").run_path(str(ROOT / "platform" / "supervision.py"))
Child, RestartPolicy, Supervisor, spawn = (supervision[n] for n in ("Child", "RestartPolicy", "Supervisor", "spawn"))

# A child that notes each of its runs in a file, then behaves as its run number says: exit 3 at once, or
# (for the runs listed in argv[2]) stay up for argv[3] seconds first.
COUNTED = """
import sys, time
runs = open(sys.argv[1], "a+")
runs.seek(0)
run = len(runs.read().split()) + 1
runs.write(f"{run}\\n")
runs.close()
if str(run) in sys.argv[2].split(","):
    time.sleep(float(sys.argv[3]))
sys.exit(3)
"""


def counted_child(tmp_path: Path, long_runs: str = "", up_for: float = 0.0):
    runs = tmp_path / "runs.txt"
    cmd = [sys.executable, "-c", COUNTED, str(runs), long_runs, str(up_for)]
    return Child("flaky", lambda: spawn(cmd)), runs


def sleeper() -> Child:
    return Child("steady", lambda: spawn([sys.executable, "-c", "import time; time.sleep(120)"]))


def pauses(output: str) -> list[float]:
    return [float(s) for s in re.findall(r"restarting it in ([\d.]+)s", output)]


def test_a_child_that_keeps_exiting_is_restarted_with_doubling_pauses_then_the_stack_stops(tmp_path, capsys):
    policy = RestartPolicy(first_delay=0.05, max_delay=0.2, stable_after=30, max_quick_exits=5)
    supervisor = Supervisor(policy)
    flaky, runs = counted_child(tmp_path)
    supervisor.start(flaky)
    steady = supervisor.start(sleeper())

    code = supervisor.run()

    output = capsys.readouterr().out
    assert code == 3  # the child's own code, so the launcher fails as loudly as the child did
    assert runs.read_text().split() == ["1", "2", "3", "4", "5"]
    assert pauses(output) == [0.05, 0.1, 0.2, 0.2]  # doubling, held at max_delay
    assert "5 quick exits in a row" in output and "giving up" in output
    assert steady.proc.returncode == -signal.SIGTERM  # the healthy child was stopped, not left running
    assert output.count("started steady") == 1


def test_a_child_that_stayed_up_starts_its_count_of_quick_exits_again(tmp_path, capsys):
    policy = RestartPolicy(first_delay=0.05, max_delay=1, stable_after=0.6, max_quick_exits=3)
    supervisor = Supervisor(policy)
    flaky, runs = counted_child(tmp_path, long_runs="3", up_for=1.0)
    supervisor.start(flaky)

    assert supervisor.run() == 3

    # Without the reset the third exit would have been the last; run 3 stayed up past stable_after.
    assert runs.read_text().split() == ["1", "2", "3", "4", "5", "6"]
    assert pauses(capsys.readouterr().out) == [0.05, 0.1, 0.05, 0.05, 0.1]


def pids_in_group(pgid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":  # field 5: the process group; skip zombies
                found.add(int(entry.name))
    return found


# A parent that starts a child of its own (as Celery starts its pool) and waits.
PARENT = (
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
    "time.sleep(120)"
)


def test_what_a_killed_child_started_is_killed_before_it_is_restarted(capsys):
    supervisor = Supervisor(RestartPolicy(first_delay=0.05, max_delay=0.05))
    child = supervisor.start(Child("parent", lambda: spawn([sys.executable, "-c", PARENT])))
    first = child.proc.pid
    deadline = time.monotonic() + 30
    seen: dict[str, set[int]] = {}

    def drive() -> bool:
        group = pids_in_group(first)
        if "before" not in seen:
            if len(group) == 2:  # the parent and its own child
                seen["before"] = group
                os.kill(first, signal.SIGKILL)
        elif supervisor.pids().get("parent", first) != first or time.monotonic() > deadline:
            seen["after"] = group
            os.kill(os.getpid(), signal.SIGTERM)  # the supervisor's handler: a clean stop
            return True
        return False

    assert supervisor.run(on_tick=drive) == 0
    output = capsys.readouterr().out
    assert len(seen["before"]) == 2
    assert supervisor.pids()["parent"] != first, output
    assert seen["after"] == set()  # the orphan went with the group, before the restart
    assert f"parent (pid {first}) killed by SIGKILL" in output


def test_sigterm_stops_every_child_and_what_it_started():
    supervisor = Supervisor()
    children = [supervisor.start(Child(f"parent-{i}", lambda: spawn([sys.executable, "-c", PARENT]))) for i in (1, 2)]
    groups = {c.proc.pid for c in children}
    deadline = time.monotonic() + 30

    def stop_when_started() -> bool:
        if all(len(pids_in_group(pgid)) == 2 for pgid in groups) or time.monotonic() > deadline:
            os.kill(os.getpid(), signal.SIGTERM)
            return True
        return False

    assert supervisor.run(on_tick=stop_when_started) == 0
    assert [c.proc.returncode for c in children] == [-signal.SIGTERM, -signal.SIGTERM]
    assert all(pids_in_group(pgid) == set() for pgid in groups)


def test_a_restart_policy_doubles_its_pause_up_to_its_cap():
    policy = RestartPolicy(first_delay=1, max_delay=30, stable_after=60, max_quick_exits=7)
    assert [policy.delay(n) for n in range(8)] == [1, 1, 2, 4, 8, 16, 30, 30]
    assert [policy.delay(n) for n in range(8)] == [RestartPolicy().delay(n) for n in range(8)]  # the defaults
    with pytest.raises(ValueError):
        RestartPolicy(first_delay=5, max_delay=1)
