"""Dividing the cores: the launcher's DISTILLERY_TRAINING_NICE, DISTILLERY_TRAINING_CPUS and DISTILLERY_WEB_CPUS
are read loudly, and a child is started with the niceness and the CPUs it was given, which what it starts inherits.
(The running stack's training worker is checked in tests/test_platform_stack.py.)"""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# platform/ is not a package: the launcher runs as a file, and the tests load its files the same way.
launcher = runpy.run_path(str(ROOT / "platform" / "embedded.py"))
spawn = runpy.run_path(str(ROOT / "platform" / "supervision.py"))["spawn"]
AVAILABLE = sorted(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("  ", None),
        (str(AVAILABLE[0]), {AVAILABLE[0]}),
        (f" {AVAILABLE[0]}-{AVAILABLE[-1]} ", set(range(AVAILABLE[0], AVAILABLE[-1] + 1)) & set(AVAILABLE)),
        (f"{AVAILABLE[-1]},{AVAILABLE[0]}-{AVAILABLE[0]}", {AVAILABLE[0], AVAILABLE[-1]}),
    ],
)
def test_a_cpu_list_is_read_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("DISTILLERY_WEB_CPUS", value)
    assert launcher["env_cpus"]("DISTILLERY_WEB_CPUS") == expected


@pytest.mark.parametrize("value", ["a", "1-0", "0-", "-1", "0;1", "0,,1", "\u00b2", "0x1"])
def test_a_malformed_cpu_list_is_an_error_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("DISTILLERY_TRAINING_CPUS", value)
    with pytest.raises(SystemExit, match=r"DISTILLERY_TRAINING_CPUS=.* is not a CPU list"):
        launcher["env_cpus"]("DISTILLERY_TRAINING_CPUS")


def test_a_cpu_the_machine_does_not_offer_is_an_error(monkeypatch):
    monkeypatch.setenv("DISTILLERY_TRAINING_CPUS", f"{AVAILABLE[0]},{max(AVAILABLE) + 1}")
    with pytest.raises(SystemExit, match=rf"names CPUs this launcher may not use: \[{max(AVAILABLE) + 1}\]"):
        launcher["env_cpus"]("DISTILLERY_TRAINING_CPUS")


@pytest.mark.parametrize(("value", "expected"), [("", 10), ("0", 0), ("5", 5), (" 19 ", 19)])
def test_the_training_niceness_is_read_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("DISTILLERY_TRAINING_NICE", value)
    assert launcher["env_niceness"]("DISTILLERY_TRAINING_NICE", launcher["TRAINING_NICE_DEFAULT"]) == expected
    assert launcher["TRAINING_NICE_DEFAULT"] == 10


@pytest.mark.parametrize("value", ["20", "-1", "ten", "1.5", "\uff15"])
def test_a_niceness_outside_0_to_19_is_an_error(monkeypatch, value):
    monkeypatch.setenv("DISTILLERY_TRAINING_NICE", value)
    with pytest.raises(SystemExit, match="DISTILLERY_TRAINING_NICE=.* is not a niceness increment from 0 to 19"):
        launcher["env_niceness"]("DISTILLERY_TRAINING_NICE", 10)


def test_serve_refuses_a_bad_setting_before_it_starts_anything(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DISTILLERY_VAR_DIR=str(tmp_path), DISTILLERY_WEB_CPUS="3-1")
    result = subprocess.run(
        [sys.executable, "platform/embedded.py", "serve", "--port", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "DISTILLERY_WEB_CPUS='3-1' is not a CPU list" in result.stderr
    assert "started" not in result.stdout and not (tmp_path / "redis").exists()


def test_a_child_is_started_nicer_and_pinned_in_a_group_of_its_own_within_the_session():
    cpu = min(os.sched_getaffinity(0))
    report = "import os; print(os.nice(0), sorted(os.sched_getaffinity(0)), os.getpgrp() == os.getpid(), os.getsid(0))"
    probe = (
        f"import subprocess, sys; {report}; subprocess.run([sys.executable, '-c', {report!r}], start_new_session=False)"
    )
    proc = spawn([sys.executable, "-c", probe], nice=3, cpus={cpu}, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    child, grandchild = out.splitlines()
    # Its own group (signalled as one), but the launcher's session: Linux's autogroup scheduler shares the CPU
    # between sessions first, so a session of its own would make the niceness count for nothing.
    session = os.getsid(0)
    assert child == f"{os.nice(0) + 3} [{cpu}] True {session}"
    assert grandchild == f"{os.nice(0) + 3} [{cpu}] False {session}"  # inherited by what it starts (a pool)
