"""The serving benchmark's pure parts: percentiles, the FLOP count, the text sets, and the load generator
against a small HTTP server started in the test."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from types import SimpleNamespace

import pytest

from bench import serve_bench
from bench.loadgen import build_request, percentile, run_load


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # rank ceil(1.5) = 2
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def test_flop_count_matches_the_hand_computed_value_for_a_tiny_config() -> None:
    dims = serve_bench.Dims.from_config(
        SimpleNamespace(num_hidden_layers=2, hidden_size=4, intermediate_size=8, num_labels=2)
    )
    # Per layer at T=3: 2*3*(4*16 + 2*4*8) = 768 matmul FLOPs + 4*9*4 = 144 attention FLOPs = 912;
    # two layers 1824, + pooler 2*4*4 = 32, + classifier 2*4*2 = 16.
    assert serve_bench.model_flops(dims, 3) == 1872
    # The attention term is quadratic in the tokens: doubling T more than doubles the count.
    assert serve_bench.model_flops(dims, 6) == 2 * (2 * 6 * 128 + 4 * 36 * 4) + 48


def test_flops_of_the_serve_student_shape_are_millions_per_token() -> None:
    dims = serve_bench.Dims(layers=3, hidden=384, intermediate=1536, labels=2)
    per_token = serve_bench.model_flops(dims, 128) / 128
    assert 10e6 < per_token < 13e6  # ~2 x parameters of the encoder layers (3 x 1.77M) plus attention


def test_peak_clock_is_read_from_cpuinfo() -> None:
    assert serve_bench.cpu_ghz("model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\ncpu MHz\t\t: 1999.9\n") == 2.2
    assert serve_bench.cpu_ghz("model name\t: AMD EPYC\ncpu MHz\t\t: 2596.152\ncpu MHz\t\t: 2600.0\n") == 2.6
    assert serve_bench.cpu_ghz("") is None


def _reviews(n: int) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for i in range(n):
        label = "negative" if i < n // 2 else "positive"  # sorted by label, like the IMDB files
        word = "awful" if label == "negative" else "wonderful"
        texts.append(
            f"Review {i} starts here.<br /><br />Too short. This one was {word} in every single way, number {i}! Ok."
        )
        labels.append(label)
    return texts, labels


def test_text_sets_are_balanced_disjoint_labelled_and_deterministic() -> None:
    texts, labels = _reviews(60)
    sets = serve_bench.sample_sets(texts, labels, 10, seed=3)
    again = serve_bench.sample_sets(texts, labels, 10, seed=3)
    assert sets == again
    assert serve_bench.sample_sets(texts, labels, 10, seed=4)["reviews"] != sets["reviews"]

    reviews, short = sets["reviews"], sets["short"]
    assert sorted(reviews.labels) == ["negative"] * 5 + ["positive"] * 5
    assert reviews.labels not in (sorted(reviews.labels), sorted(reviews.labels, reverse=True))  # shuffled
    assert sorted(short.labels) == ["negative"] * 5 + ["positive"] * 5
    for sentence, label in zip(short.texts, short.labels, strict=True):
        # The review's last sentence of 6-20 words, with its review's label, from a review not in `reviews`.
        assert sentence.startswith("This one was ") and "<br" not in sentence
        assert ("awful" in sentence) == (label == "negative")
        number = int(sentence.rstrip("!").rsplit(" ", 1)[1])
        assert texts[number] not in reviews.texts
        assert labels[number] == label


def test_sentences_are_split_after_end_marks_without_tags() -> None:
    text = "Great film.<br /><br />I loved it! Did you? 10/10 from me... The end"
    assert serve_bench.split_sentences(text) == [
        "Great film.",
        "I loved it!",
        "Did you?",
        "10/10 from me...",
        "The end",
    ]
    assert serve_bench.split_sentences("Mr. smith said e.g. this") == ["Mr. smith said e.g. this"]


class _Server:
    """A tiny HTTP/1.1 keep-alive server: fixed JSON, 500 for every `fail_every`-th request, chunked bodies
    when asked, and it hangs up after `close_after` answers on a connection (with Connection: close)."""

    def __init__(self, *, fail_every: int = 0, chunked: bool = False, close_after: int = 0) -> None:
        self.fail_every, self.chunked, self.close_after = fail_every, chunked, close_after
        self.count = 0
        self.connections = 0
        self.bodies: list[dict] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                self.bodies.append(json.loads(await reader.readexactly(length)))
                self.count += 1
                answered += 1
                status = (
                    b"500 Internal Server Error" if self.fail_every and self.count % self.fail_every == 0 else b"200 OK"
                )
                body = json.dumps({"label": "positive", "probability": 0.9}).encode()
                close = self.close_after and answered >= self.close_after
                headers = b"Content-Type: application/json\r\n" + (b"Connection: close\r\n" if close else b"")
                if self.chunked:
                    half = len(body) // 2
                    payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:])) + b"0\r\n\r\n"
                    headers += b"Transfer-Encoding: chunked\r\n"
                else:
                    payload = body
                    headers += b"Content-Length: %d\r\n" % len(body)
                writer.write(b"HTTP/1.1 " + status + b"\r\n" + headers + b"\r\n" + payload)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _load(server: _Server, n_texts: int, clients: int, **kwargs):
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    requests = [
        build_request("127.0.0.1", port, "/api/classify/", {"text": f"t{i}"}, {"Authorization": "Token k"})
        for i in range(n_texts)
    ]
    async with srv:
        return await run_load("127.0.0.1", port, requests, clients, parse=lambda b: json.loads(b)["label"], **kwargs)


def test_loadgen_counts_every_fifth_500_as_an_error() -> None:
    server = _Server(fail_every=5)
    result = asyncio.run(_load(server, 50, 4))
    assert server.count == result.requests == 50
    assert result.error_count == 10 and result.errors == {"status 500": 10}
    assert result.statuses == {200: 40, 500: 10}
    assert result.ok == 40 and len(result.ok_indices) == 40
    assert server.connections == 4  # keep-alive: one connection per client
    assert [b["text"] for b in server.bodies] and sorted(b["text"] for b in server.bodies) == sorted(
        f"t{i}" for i in range(50)
    )
    summary = result.summary()
    assert summary["errors"] == 10 and summary["requests"] == 50
    assert summary["rps"] == pytest.approx(40 / result.elapsed)
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    assert len(result.answers) == 40 and set(result.answers.values()) == {"positive"}


def test_loadgen_reads_chunked_answers_and_reconnects_after_connection_close() -> None:
    server = _Server(chunked=True, close_after=3)
    result = asyncio.run(_load(server, 30, 2))
    assert result.ok == 30 and result.error_count == 0
    assert server.connections >= 10  # at most 3 answers per connection


def test_loadgen_cycles_through_the_texts_for_a_duration() -> None:
    server = _Server()
    result = asyncio.run(_load(server, 7, 3, seconds=0.3))
    assert result.requests == server.count > 7  # wrapped around the 7 texts
    assert set(result.answers) == set(range(7))
    assert result.elapsed >= 0.3


def test_loadgen_counts_a_refused_connection_and_goes_on() -> None:
    async def refused():
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        srv.close()
        await srv.wait_closed()
        request = build_request("127.0.0.1", port, "/", {"text": "x"}, {})
        return await run_load("127.0.0.1", port, [request] * 6, 2, timeout=2)

    result = asyncio.run(refused())
    assert result.ok == 0 and result.errors == {"connection error": 6}


def test_cpu_meter_counts_this_process_as_the_client() -> None:
    meter = serve_bench.CpuMeter().start()
    spin_until = time.perf_counter() + 0.3
    while time.perf_counter() < spin_until:
        pass
    cores = meter.stop()
    assert 0.1 < cores["client_cpu_cores"] <= 1.05
    assert cores["server_cpu_cores"] == 0.0 and cores["other_cpu_cores"] >= 0.0


def _point(rps: float, p99: float = 10.0, errors: int = 0) -> dict:
    return {"rps": rps, "p50_ms": 5.0, "p95_ms": 8.0, "p99_ms": p99, "errors": errors, "requests": 100}


def test_ratios_and_targets_compare_the_engine_with_the_baseline() -> None:
    runs = {
        "baseline": {"short": {"1": _point(40.0), "32": _point(50.0)}, "reviews": {"32": _point(20.0, errors=3)}},
        "engine": {"short": {"1": _point(44.0), "32": _point(250.0, p99=120.0)}, "reviews": {"32": _point(30.0)}},
    }
    ratio = serve_bench.ratios(runs, [1, 32], bare_ms=4.0, bare_torch_ms=10.0)
    assert ratio["rps_ratio_short_32"] == pytest.approx(5.0)
    assert ratio["rps_ratio_short_1"] == pytest.approx(1.1)
    assert ratio["rps_ratio_reviews_32"] == pytest.approx(1.5)
    assert "rps_ratio_reviews_1" not in ratio  # no point measured there
    assert ratio["p1_p50_over_bare_forward"] == pytest.approx(5.0 / 4.0)
    assert ratio["p1_p50_over_bare_torch_forward"] == pytest.approx(5.0 / 10.0)

    targets = serve_bench.check_targets(runs, ratio)
    assert {k: t["met"] for k, t in targets.items()} == {
        "rps_ratio_short_32": True,
        "rps_ratio_reviews_32": False,
        "engine_p99_ms_short_32": True,
        "engine_errors": True,  # the baseline's errors are reported in its points, not held against the engine
        "p1_p50_over_bare_forward": False,
        "p1_p50_over_floor_inline": None,  # measured with --floor only
        # against LitServe: measured with --runs ...,litserve only
        "median_engine_over_litserve_rps_short_32": None,
        "median_litserve_over_engine_p99_short_32": None,
        "median_engine_over_litserve_rps_reviews_32": None,
        "median_litserve_over_engine_p99_reviews_32": None,
    }
    only_engine = serve_bench.check_targets(
        {"engine": runs["engine"]}, serve_bench.ratios({"engine": runs["engine"]}, [32], None)
    )
    assert only_engine["rps_ratio_short_32"]["met"] is None and only_engine["p1_p50_over_bare_forward"]["met"] is None


@pytest.mark.parametrize("mode", serve_bench.FLOOR_MODES)
def test_each_floor_app_answers_a_text_as_the_model_does(mode, tiny_model_dir, monkeypatch) -> None:
    import importlib
    import sys

    from mlcore.inference import Classifier

    monkeypatch.setenv("BENCH_FLOOR_MODE", mode)
    monkeypatch.setenv("BENCH_FLOOR_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("DISTILLERY_SERVING_RUNTIME", "torch")
    monkeypatch.delitem(sys.modules, "bench.floor_app", raising=False)
    floor_app = importlib.import_module("bench.floor_app")
    sent: list[dict] = []

    async def call(method: str, body: bytes) -> dict:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message)

        await floor_app.app({"type": "http", "method": method, "path": "/"}, receive, send)
        assert sent[-2]["status"] == 200
        return json.loads(sent[-1]["body"])

    try:
        assert asyncio.run(call("GET", b"")) == {"status": "ok"}
        answer = asyncio.run(call("POST", json.dumps({"text": "a great good film"}).encode()))
    finally:
        if mode == "engine":
            floor_app.MODEL.close()
        sys.modules.pop("bench.floor_app", None)
    if mode == "http":
        assert answer == {"label": "positive"}
    else:
        expected = Classifier.load(tiny_model_dir).predict(["a great good film"])[0]
        assert answer["label"] == expected.label
        assert answer["probabilities"] == pytest.approx(expected.probabilities)


def test_floor_needs_the_short_sentences() -> None:
    with pytest.raises(SystemExit):
        serve_bench.parse_args(["--floor", "--sets", "reviews"])
    assert serve_bench.parse_args(["--floor"]).floor is True


def test_the_student_test_accuracy_counts_every_row(tiny_model_dir, tmp_path) -> None:
    import csv

    from bench.serve_student import test_accuracy
    from mlcore.inference import Classifier
    from mlcore.testing import sentiment_rows

    rows = sentiment_rows(600, seed=3)  # more than one chunk of 512
    path = tmp_path / "test.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([("text", "label"), *rows])
    result = test_accuracy(tiny_model_dir, path, runtime="torch")
    predicted = Classifier.load(tiny_model_dir).predict([text for text, _ in rows])
    expected = sum(p.label == label for p, (_, label) in zip(predicted, rows, strict=True)) / len(rows)
    assert expected > 0.5  # the tiny model learnt something, so the two counts are not trivially equal
    assert result["rows"] == 600 and result["accuracy"] == pytest.approx(expected)


def test_litserve_is_compared_with_the_engine_per_set_and_clients() -> None:
    runs = {
        "engine": {"short": {"32": _point(400.0, p99=100.0)}, "reviews": {"32": _point(80.0, p99=400.0)}},
        "litserve": {"short": {"32": _point(200.0, p99=150.0)}, "reviews": {"32": _point(100.0, p99=200.0)}},
    }
    ratio = serve_bench.ratios(runs, [32], bare_ms=None)
    assert ratio["engine_over_litserve_rps_short_32"] == pytest.approx(2.0)
    assert ratio["litserve_over_engine_p99_short_32"] == pytest.approx(1.5)  # above 1: the engine's p99 is lower
    assert ratio["engine_over_litserve_rps_reviews_32"] == pytest.approx(0.8)
    assert ratio["litserve_over_engine_p99_reviews_32"] == pytest.approx(0.5)
    line = serve_bench.vs_litserve(runs, ratio)
    assert "short 400.0 vs 200.0 req/s (x2.00)" in line and "(LitServe/engine x0.50)" in line
    assert "engine_over_litserve_rps_short_32" not in serve_bench.ratios({"engine": runs["engine"]}, [32], None)


def test_pairs_are_judged_by_the_median_of_their_ratios() -> None:
    def pair(short_rps: float, short_p99: float, reviews_p99: float) -> dict:
        return {
            "engine": {"short": _point(short_rps, p99=100.0), "reviews": _point(100.0, p99=reviews_p99)},
            "litserve": {"short": _point(100.0, p99=short_p99), "reviews": _point(100.0, p99=110.0)},
        }

    # short: rps ratios 1.5, 0.9, 1.2 (median 1.2); p99 LitServe/engine 1.1, 0.8, 2.0 (median 1.1)
    # reviews: rps 1.0 in each; p99 110/100, 110/220, 110/100 (median 1.1, the middle pair's 0.5 outvoted)
    pairs = [pair(150.0, 110.0, 100.0), pair(90.0, 80.0, 220.0), pair(120.0, 200.0, 100.0)]
    ratio = serve_bench.pair_ratios(pairs)
    assert ratio["median_engine_over_litserve_rps_short_32"] == pytest.approx(1.2)
    assert ratio["pairs_ahead_engine_over_litserve_rps_short_32"] == 2
    assert ratio["median_litserve_over_engine_p99_short_32"] == pytest.approx(1.1)
    assert ratio["median_litserve_over_engine_p99_reviews_32"] == pytest.approx(1.1)
    assert ratio["pairs_ahead_litserve_over_engine_p99_reviews_32"] == 2
    assert ratio["pairs_ahead_engine_over_litserve_rps_reviews_32"] == 3  # a tie counts as matching
    met = {k: t["met"] for k, t in serve_bench.check_targets({}, ratio).items() if k.startswith("median_")}
    assert met == dict.fromkeys(met, True) and len(met) == 4
    ratio["median_litserve_over_engine_p99_reviews_32"] = 0.95
    assert serve_bench.check_targets({}, ratio)["median_litserve_over_engine_p99_reviews_32"]["met"] is False
    assert "reviews req/s x1.00 (engine ahead in 3)" in serve_bench.pairs_line(pairs, ratio)


def test_pairs_after_the_first_alternate_which_server_goes_first(monkeypatch) -> None:
    """The runs' own engine/LitServe points are the first pair; each further pair starts the other server first,
    so a machine slowing down during the bench weighs on both."""
    order = []

    def fake_run(name, stack, sets, flops, concurrency, seconds, peak, folder):
        order.append(name)
        assert concurrency == [serve_bench.PAIR_CLIENTS]
        return {s: {"32": _point(float(len(order)))} for s in sets}

    monkeypatch.setattr(serve_bench, "measure_run", fake_run)
    runs = {n: {"short": {"32": _point(1.0)}, "reviews": {"32": _point(1.0)}} for n in ("engine", "litserve")}
    sets = {"short": None, "reviews": None}
    pairs = serve_bench.measure_pairs(None, sets, {}, runs, 4, 1.0, None, None)
    assert order == ["litserve", "engine", "engine", "litserve", "litserve", "engine"]
    assert [p["first"] for p in pairs] == ["engine", "litserve", "engine", "litserve"]
    assert pairs[0]["engine"]["short"] is runs["engine"]["short"]["32"]
    assert pairs[1]["litserve"]["reviews"]["rps"] == 1.0 and pairs[1]["engine"]["reviews"]["rps"] == 2.0


def test_the_floor_repeats_its_inline_platform_pair_and_takes_the_median(monkeypatch) -> None:
    """--floor with --pairs: after the four floor points, more inline/platform pairs, each further one starting
    with the other server; the one-client target is judged by the median of platform/inline p50s."""
    order, p50 = [], iter([1.0, 1.1, 2.0, 1.0, 1.2, 1.0, 1.0, 1.05])

    def fake_point(stack, mode, folder, precision, short, seconds, note=""):
        order.append(mode)
        return _point(100.0) | {"p50_ms": next(p50)}

    monkeypatch.setattr(serve_bench, "_floor_point", fake_point)
    floor = serve_bench.measure_floor(None, None, "int8", None, 1.0, pairs=3)
    assert order == ["http", "inline", "platform", "engine", "platform", "inline", "inline", "platform"]
    # pairs (platform / inline): 2.0/1.1, then 1.2/1.0 (platform first), then 1.05/1.0: the median is 1.2
    assert [p["first"] for p in floor["pairs"]] == ["inline", "platform", "inline"]
    assert floor["pairs"][1] == {"first": "platform", "platform": 1.2, "inline": 1.0}
    assert serve_bench.floor_ratio(floor) == pytest.approx(1.2)
    assert floor["platform"]["p50_ms"] == 2.0  # the sequence's own points stay as measured


def test_pairs_need_something_to_repeat() -> None:
    with pytest.raises(SystemExit):
        serve_bench.parse_args(["--pairs", "0"])
    with pytest.raises(SystemExit):
        serve_bench.parse_args(["--pairs", "3"])  # no LitServe run to pair with, no floor
    assert serve_bench.parse_args(["--pairs", "3", "--floor"]).pairs == 3
    if importlib.util.find_spec("litserve") is not None:
        with pytest.raises(SystemExit):
            serve_bench.parse_args(["--pairs", "3", "--runs", "engine,litserve", "--concurrency", "1,8"])
        args = serve_bench.parse_args(["--pairs", "3", "--runs", "engine,litserve", "--concurrency", "1,32"])
        assert args.pairs == 3


def test_litserve_is_an_opt_in_run() -> None:
    assert serve_bench.parse_args([]).runs == ["baseline", "engine"]
    if importlib.util.find_spec("litserve") is None:
        with pytest.raises(SystemExit):
            serve_bench.parse_args(["--runs", "engine,litserve"])
    else:
        assert serve_bench.parse_args(["--runs", "litserve,engine"]).runs == ["engine", "litserve"]


def test_litserve_serves_the_platforms_answer_over_http(tiny_model_dir, tmp_path) -> None:
    """The `litserve` run's server, started as the bench starts it, on the tiny model: the load generator's
    requests get the platform's JSON with the model's labels, and stopping it leaves no process behind."""
    pytest.importorskip("litserve")
    import os
    import subprocess
    import sys

    from bench.serve_bench import Stack, _run
    from mlcore.inference import Classifier

    stack = Stack(tmp_path)
    stack.env = dict(os.environ, DISTILLERY_SERVING_RUNTIME="torch", DISTILLERY_SERVING_MAX_WAIT_MS="50")
    texts = ["a great good film", "awful bad movie", "good", "terrible acting", "wonderful", "bad bad bad"] * 2
    try:
        port, _ = stack.start_litserve(tiny_model_dir)
        pids = stack.server_pids()
        requests = [build_request("127.0.0.1", port, "/api/classify/", {"text": t}, {"Authorization": "Token k"})
                    for t in texts]  # fmt: skip
        result = _run(port, requests, len(texts), order=range(len(texts)))
    finally:
        stack.stop_server()
    assert result.ok == len(texts) and result.error_count == 0
    expected = Classifier.load(tiny_model_dir).predict(texts)
    assert [result.answers[i] for i in range(len(texts))] == [p.label for p in expected]
    assert len(pids) >= 3  # the launcher, its API server and its model worker (and its manager)
    log = stack.log.read_text()
    assert "Traceback" not in log, log
    leftovers = subprocess.run(["ps", "-o", "pid=", "-g", str(pids[0])], capture_output=True, text=True).stdout
    assert not leftovers.strip(), f"LitServe processes left behind: {leftovers} ({sys.platform})"


def test_litserve_api_batches_texts_into_one_classifier_call(tiny_model_dir, monkeypatch) -> None:
    pytest.importorskip("litserve")
    from bench.litserve_app import ClassifyAPI
    from mlcore.inference import Classifier

    monkeypatch.setenv("DISTILLERY_SERVING_RUNTIME", "torch")
    api = ClassifyAPI(str(tiny_model_dir), "fp32")
    api.setup("cpu")
    assert (api.max_batch_size, api.batch_timeout, api.api_path) == (16, 0.003, "/api/classify/")  # the engine's
    calls: list[int] = []
    original = api.classifier.predict
    monkeypatch.setattr(
        api.classifier, "predict", lambda texts, batch_size: calls.append(len(texts)) or original(texts)
    )
    texts = [api.decode_request({"text": t}) for t in ("a great good film", "awful bad movie", "good")]
    answers = [api.encode_response(p) for p in api.unbatch(api.predict(api.batch(texts)))]
    assert calls == [3]
    for text, answer in zip(texts, answers, strict=True):
        alone = Classifier.load(tiny_model_dir).predict([text])[0]
        assert set(answer) == {"label", "probability", "probabilities", "truncated"}
        assert answer["label"] == alone.label and answer["probabilities"] == pytest.approx(alone.probabilities)
