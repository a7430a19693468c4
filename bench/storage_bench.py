"""Upload and download throughput of one large file through Django's storage API: the filesystem
(FileSystemStorage) against the S3 backend (django-storages' S3Storage, configured as config.settings.s3_storage
configures it: 8 MB parts, 4 at a time) talking to moto's standalone S3 server on loopback.

    python -m bench.storage_bench [--mb 100] [--rounds 3] [--out DIR]

Upload: default_storage.save() of a file of random bytes already on disk (what storing a model does).
Download: open() and read() in 1 MB blocks to the end (what a worker's copy into its cache does). Each figure is
the median of --rounds rounds, in MB/s (MB = 2**20 bytes). moto is a Python server on the same machine: its
figures bound the S3 code path's overhead here, not a real bucket's bandwidth. Prints and writes JSON; the last
line printed is its path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.train_bench import DEFAULT_OUT

BUCKET = "distillery-bench"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=100, help="size of the file, in MB (2**20 bytes)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per figure; the median is reported")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder the JSON report goes to")
    args = p.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with tempfile.TemporaryDirectory(prefix="distillery-storage-bench-") as tmp:
        report = run(args, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"storage-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report["mb_per_s"], indent=1))
    print(path)


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.files.storage import FileSystemStorage

    source = tmp / "model.safetensors"
    with source.open("wb") as fh:  # written a block at a time: the bench holds no whole file either
        for _ in range(args.mb):
            fh.write(os.urandom(2**20))
    server, url = _start_moto()
    try:
        import boto3
        from storages.backends.s3 import S3Storage

        from config.settings import s3_storage

        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        backends = {
            "filesystem": FileSystemStorage(location=tmp / "media"),
            "s3": S3Storage(**s3_storage(BUCKET, url, "us-east-1")["OPTIONS"]),
        }
        rounds = {name: [_round(storage, source) for _ in range(args.rounds)] for name, storage in backends.items()}
    finally:
        server.terminate()
        server.wait(timeout=10)
    mb_per_s = {
        name: {way: round(statistics.median(args.mb / r[way] for r in runs), 1) for way in ("upload", "download")}
        for name, runs in rounds.items()
    }
    return {
        "bench": "storage",
        "file_mb": args.mb,
        "rounds": args.rounds,
        "mb_per_s": mb_per_s,
        "s3_over_filesystem": {
            way: round(mb_per_s["s3"][way] / mb_per_s["filesystem"][way], 3) for way in ("upload", "download")
        },
        "seconds": rounds,
        "server": "moto_server (moto 5.2.5) on 127.0.0.1, its own process",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }


def _round(storage, source: Path) -> dict[str, float]:
    from django.core.files import File

    started = time.perf_counter()
    with source.open("rb") as fh:
        name = storage.save("bench/model.safetensors", File(fh))
    uploaded = time.perf_counter()
    read = 0
    with storage.open(name, "rb") as fh:
        while block := fh.read(2**20):
            read += len(block)
    downloaded = time.perf_counter()
    storage.delete(name)
    if read != source.stat().st_size:
        raise RuntimeError(f"read back {read} bytes of {source.stat().st_size}")
    return {"upload": uploaded - started, "download": downloaded - uploaded}


def _start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.05)  # between connection attempts
    server.terminate()
    raise TimeoutError("moto_server did not start in 30 s")


if __name__ == "__main__":
    main()
