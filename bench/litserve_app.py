"""LitServe serving the benchmark's model: the serving benchmark's `litserve` run, a widely used model server
with dynamic batching, on the same model work as Distillery's engine.

    python -m bench.litserve_app --port PORT      (BENCH_LITSERVE_MODEL=FOLDER, BENCH_LITSERVE_PRECISION=int8)

It answers `POST /api/classify/` with `{"text": "..."}` as the platform does (`{"label", "probability",
"probabilities", "truncated"}`; any Authorization header is ignored: LitServe authenticates nothing unless
LIT_SERVER_API_KEY is set), so the benchmark's load generator, texts and clients are the same for every run.

The setup, chosen to give LitServe the same model work and its best footing on this machine:

- The model: `mlcore.inference.Classifier.load` at the engine run's precision, on the serving runtime
  (DISTILLERY_SERVING_RUNTIME, default ONNX Runtime; DISTILLERY_SERVING_THREADS, DISTILLERY_SERVING_SPIN as the
  server reads them), one `Classifier.predict(texts, batch_size=max_batch_size)` per batch: tokenising,
  padding and softmax are Distillery's own code, so only the serving around them differs.
- Dynamic batching as Distillery's engine is configured by default: `max_batch_size` =
  DISTILLERY_SERVING_MAX_BATCH (16 texts) and `batch_timeout` = DISTILLERY_SERVING_MAX_WAIT_MS (3 ms), read from
  the same variables. (LitServe waits up to batch_timeout for every batch that is not full, a lone request too;
  Distillery's engine runs a lone request at once.)
- Its own API definition: a `LitAPI` whose `decode_request` / `batch` / `predict` / `unbatch` /
  `encode_response` are the hooks LitServe documents for batched models; no LitSpec (its specs are OpenAI's
  chat and embedding shapes, not a classifier's).
- `accelerator="cpu"`, `workers_per_device` = BENCH_LITSERVE_WORKERS (default 1: one model process using every
  core, as Distillery runs one model thread with ONNX Runtime's threads on every core; 2 workers each get
  one intra-op thread, so the 2 cores are not oversubscribed). One API server process (`num_api_servers=1`:
  the platform runs one uvicorn process), uvicorn as LitServe starts it (uvloop and httptools where installed,
  as the platform's uvicorn picks them), no access log, logs at warning. `fast_queue` (ZeroMQ between the API
  server and the workers, which LitServe recommends above 100 requests/s) = BENCH_LITSERVE_FAST_QUEUE,
  default on. Request timeout 30 s, as the load generator's.

Not part of the product: nothing imports it but the benchmark (and its test); litserve is a benchmark-only
dependency (requirements-bench.txt).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import litserve as ls
from fastapi import HTTPException

PATH = "/api/classify/"  # what the load generator posts to, as on the platform
MAX_BATCH = int(os.environ.get("DISTILLERY_SERVING_MAX_BATCH") or 16)  # texts; the engine's default
MAX_WAIT_S = float(os.environ.get("DISTILLERY_SERVING_MAX_WAIT_MS") or 3) / 1000  # the engine's max_wait_ms
REQUEST_TIMEOUT_S = 30.0  # the load generator's


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.lower() in ("1", "true", "yes", "on")


class ClassifyAPI(ls.LitAPI):
    """`{"text": ...}` in, the platform's prediction JSON out; texts batched into one Classifier.predict call."""

    def __init__(self, folder: str, precision: str, threads: int = 0, **kwargs: Any) -> None:
        super().__init__(max_batch_size=MAX_BATCH, batch_timeout=MAX_WAIT_S, api_path=PATH, **kwargs)
        self.folder, self.precision, self.threads = folder, precision, threads

    def setup(self, device: str) -> None:
        from bench.serve_bench import serving_runtime, serving_spin
        from mlcore.inference import Classifier

        self.classifier = Classifier.load(
            self.folder,
            precision=self.precision,
            runtime=serving_runtime(),
            threads=self.threads,
            spin=serving_spin(),
        )
        self.classifier.predict(["warm up"] * min(self.max_batch_size, 8))  # as the engine warms up

    def decode_request(self, request) -> str:  # unannotated: LitServe then passes the parsed JSON body
        text = request.get("text") if isinstance(request, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise HTTPException(400, 'give {"text": "..."}')
        return text

    def batch(self, inputs: list[str]) -> list[str]:
        return list(inputs)

    def predict(self, texts: list[str]) -> list[Any]:
        return self.classifier.predict(texts, batch_size=self.max_batch_size)

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def encode_response(self, prediction: Any) -> dict[str, Any]:
        return {
            "label": prediction.label,
            "probability": prediction.probability,
            "probabilities": prediction.probabilities,
            "truncated": prediction.truncated,
        }


def server(folder: str, precision: str, workers: int = 1, fast_queue: bool = True) -> ls.LitServer:
    """The LitServer the benchmark runs: one API server process, `workers` model processes on the CPU."""
    cores = os.cpu_count() or 1
    threads = int(os.environ.get("DISTILLERY_SERVING_THREADS") or 0) or max(1, cores // workers)
    api = ClassifyAPI(folder, precision, threads=threads)
    return ls.LitServer(
        api,
        accelerator="cpu",
        workers_per_device=workers,
        timeout=REQUEST_TIMEOUT_S,
        fast_queue=fast_queue,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.litserve_app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    workers = int(os.environ.get("BENCH_LITSERVE_WORKERS") or 1)
    lit = server(
        os.environ["BENCH_LITSERVE_MODEL"],
        os.environ.get("BENCH_LITSERVE_PRECISION", "fp32"),
        workers=workers,
        fast_queue=_flag("BENCH_LITSERVE_FAST_QUEUE", True),
    )
    lit.run(
        host="127.0.0.1",
        port=args.port,
        num_api_servers=1,
        log_level="warning",
        generate_client_file=False,
        access_log=False,
    )


if __name__ == "__main__":
    main()
