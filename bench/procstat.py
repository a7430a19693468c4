"""What /proc says about the stack's processes: who is whose child, resident memory, CPU time, nice, CPUs.

Linux only (the benchmarks read /proc directly, as `ps` would); a process that has gone reads as absent.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # clock ticks per second in /proc/PID/stat


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): field 3 (state) is index 0."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """The direct children of pid, found by their parent id (field 4)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def tree(pid: int) -> list[int]:
    """pid and all its descendants (a Celery worker and its pool processes)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children(current))
    return out


def cmdline(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0") if a]
    return []


def rss_bytes(pid: int) -> int | None:
    """Resident set size (VmRSS) in bytes, or None once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes that still exist (fields 14 and 15), in seconds."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot: /proc/stat's first line, all but idle and iowait."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


def scheduling(pid: int) -> dict[str, object]:
    """How the kernel schedules the process: its nice value (field 19) and the CPUs it may run on."""
    out: dict[str, object] = {"pid": pid, "nice": None, "cpus_allowed": None, "cmdline": " ".join(cmdline(pid))}
    with contextlib.suppress(OSError, IndexError, ValueError):
        out["nice"] = int(_stat_fields(pid)[16])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                out["cpus_allowed"] = line.split(":", 1)[1].strip()
    return out
