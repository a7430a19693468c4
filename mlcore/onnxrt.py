"""ONNX Runtime for CPU serving: the same trained model, exported once per folder, run in one call per batch.

PyTorch runs a small encoder op by op from Python: on the serve student (all-MiniLM-L6-v2 cut to 3 layers,
2-core AMD EPYC without AVX-512) one 18-token sentence took 7.2 ms in PyTorch int8 and 4.4 to 11 ms in fp32,
most of it interpreter time between ops, with the GIL held, so the web process's event loop waited on it.
ONNX Runtime runs the whole graph in C++ without the GIL: 1.6 to 1.9 ms in int8, 2.5 to 4.9 ms in fp32 (the
same logits as PyTorch fp32 to 1e-6); 32 reviews took 53 to 60 ms in int8 against PyTorch int8's 63 to 71.

The export is written once, beside the model (`<folder>/.onnx/`) or where the caller says; later loads reuse
it. A model folder may also ship its exports (`ship()`: the training worker does, so that no web process
exports or quantises a new model again): `export()` uses a shipped file when the folder's sidecar
(`onnx.json`) says it was made from the very weights beside it, and exports afresh otherwise. Exporting goes
through a fresh copy of the model, since the exporter leaves the module it traces changed. int8 is ONNX
Runtime's dynamic quantisation with a scale per output channel, as `mlcore.quantize` does for PyTorch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from mlcore.loading import load_trained

log = logging.getLogger(__name__)

EXPORT_DIR = ".onnx"
FILE_NAMES = {"fp32": "model.onnx", "int8": "model-int8.onnx"}
SHIPPED_MANIFEST = "onnx.json"  # in a model folder that ships its exports: {"weights_sha256", "files"}
OPSET = 17


def available() -> bool:
    """Whether onnxruntime (and the onnx package the export needs) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def runtime_for(wanted: str) -> str:
    """The runtime that serves when `wanted` is asked for: onnx only where onnxruntime is installed."""
    return "onnx" if wanted == "onnx" and available() else "torch"


def export(
    model_dir: str | os.PathLike[str], precision: str = "fp32", folder: str | os.PathLike[str] | None = None
) -> Path:
    """The ONNX file of `model_dir` at `precision` (fp32 or int8) in `folder` (default `<model_dir>/.onnx`),
    exported (and quantised) if it is missing.

    Files are written under a temporary name and renamed, so concurrent loaders never read half a file.
    """
    if precision not in FILE_NAMES:
        raise ValueError(f"no ONNX export for precision {precision!r}")
    folder = Path(folder) if folder is not None else Path(model_dir) / EXPORT_DIR
    target = folder / FILE_NAMES[precision]
    if target.exists():
        return target
    ready = shipped(model_dir)
    if precision in ready:
        return ready[precision]
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = ready.get("fp32") or folder / FILE_NAMES["fp32"]
    if not fp32.exists():
        _export_fp32(Path(model_dir), fp32)
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with _staging(target) as tmp, _quiet_root_logger("pre-processing before quantization"):
            quantize_dynamic(fp32, tmp, weight_type=QuantType.QInt8, per_channel=True)
    return fp32 if precision == "fp32" else target


def ship(model_dir: str | os.PathLike[str], precisions: list[str], folder: str | os.PathLike[str]) -> list[str]:
    """Copy the exports at `precisions` from `folder` (where export() wrote them) into `model_dir`, with the
    sidecar that ties them to its weights; returns the names of the files written (none if an export is
    missing: shipping is an optimisation, and a folder without it is exported where it is served)."""
    sources = {p: Path(folder) / FILE_NAMES[p] for p in precisions}
    if not sources or not all(path.is_file() for path in sources.values()):
        return []
    model_dir = Path(model_dir)
    names = [*(path.name for path in sources.values()), SHIPPED_MANIFEST]
    manifest = {"weights_sha256": _weights_digest(model_dir), "files": {p: s.name for p, s in sources.items()}}
    try:
        for path in sources.values():
            shutil.copyfile(path, model_dir / path.name)
        (model_dir / SHIPPED_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    except BaseException:  # a full disk, say: leave the folder as it was, not half a file to store
        for name in names:
            (model_dir / name).unlink(missing_ok=True)
        raise
    return names


def shipped(model_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """{precision: path} of the exports `model_dir` ships, if its sidecar names the weights beside it (a folder
    whose weights were replaced after shipping ships nothing)."""
    model_dir = Path(model_dir)
    try:
        manifest = json.loads((model_dir / SHIPPED_MANIFEST).read_text(encoding="utf-8"))
        files = {p: model_dir / Path(name).name for p, name in manifest["files"].items() if p in FILE_NAMES}
        if manifest["weights_sha256"] != _weights_digest(model_dir):
            log.warning("%s ships ONNX exports of other weights; exporting afresh", model_dir)
            return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    return {p: path for p, path in files.items() if path.is_file()}


def _weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin")):
        digest.update(path.name.encode())
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _staging(target: Path):
    """A temporary path beside `target`, renamed onto it when the block succeeds (as mlcore.checkpoint does)."""
    fd, name = tempfile.mkstemp(prefix=target.stem + "-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o644)  # mkstemp makes it private; web and worker may run as different users
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _quiet_root_logger(text: str):
    """Drop root-logger records containing `text` (onnxruntime.quantization advises on every call)."""

    def keep(record: logging.LogRecord) -> bool:
        return text not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


class _Logits(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _export_fp32(model_dir: Path, target: Path) -> None:
    model, _, _, _ = load_trained(model_dir)
    model.eval()
    # The plain attention exports as ordinary ops, which ONNX Runtime fuses itself.
    model.set_attn_implementation("eager")
    example = torch.ones(1, 8, dtype=torch.long)
    dynamic = {0: "batch", 1: "tokens"}
    with _staging(target) as tmp, warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python in transformers
        torch.onnx.export(
            _Logits(model),
            (example, example),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    log.info("exported %s to ONNX", model_dir)


class OnnxModel:
    """An ONNX Runtime session called like the PyTorch model: model(input_ids=..., attention_mask=...).logits."""

    def __init__(self, path: str | os.PathLike[str], threads: int = 0, *, spin: bool = False) -> None:
        """`threads` intra-op threads (0: one per core). With `spin`, pool threads spin a moment after each
        call before they sleep, so the next call finds them awake: a tight loop of one-sentence calls ran in
        1.9 to 2.2 ms instead of 2.7 to 2.8, but behind the web server (2 cores, the load generator beside it) one
        client's p50 was the same within this machine's noise (short sentences 4.8 and 4.8 ms against 4.9 and
        5.8, in alternating runs) for 0.6 of a core more, so it is off by default."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.spin = spin
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: object) -> SimpleNamespace:
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        (logits,) = self.session.run(["logits"], feeds)
        return SimpleNamespace(logits=torch.from_numpy(logits))

    def probabilities(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, *, temperature: float = 1.0, **_: object
    ) -> list[list[float]]:
        """Softmax of the logits / temperature per row, from int64 arrays: the serving path, which never touches
        torch (its tensor and op calls from Python cost about 0.3 ms per one-sentence request here, a tenth of the
        forward)."""
        (logits,) = self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})
        logits = logits.astype(np.float64) / temperature
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).tolist()
