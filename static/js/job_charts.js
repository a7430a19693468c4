// The job page's charts: each metric point (from the history, then live) plotted once, by step, epoch or time;
// exact values on hover; drag to zoom, every chart following; the latest evaluation table. job.js feeds it.
window.DistilleryJobCharts = (function () {
  "use strict";

  var SMOOTHING = 0.9; // exponential moving average weight for the noisy per-batch series
  // Per-batch series drawn faint with their moving average over them.
  var SMOOTHED = ["train/loss", "train/accuracy", "train/soft_loss", "train/hard_loss", "train/hidden_loss",
    "train/agreement", "train/samples_per_s"];
  var AXIS_TITLES = { step: "step", epoch: "epoch", time: "time since the job started (h:mm:ss)" };
  var NOT_SERIES = { time: true, epoch: true }; // the x values a point carries, not series of their own

  function numeric(v) { return typeof v === "number" && isFinite(v); }

  // A value as exactly as a person reads it: six significant digits, no trailing zeros.
  function exact(v) {
    if (!numeric(v)) return String(v);
    if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) return v.toExponential(5).replace(/\.?0+e/, "e");
    return String(Number(v.toPrecision(6)));
  }

  // Short form for the evaluation table.
  function fmt(v) {
    if (!numeric(v)) return String(v);
    if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(3);
    return (Math.round(v * 10000) / 10000).toString();
  }

  // The fewest digits after the point (at least one) at which every tick's label differs: a learning rate
  // that moves from 2.00e-5 to 1.98e-5 needs two, where one would print "2.0e-5" four times.
  function distinctDigits(values) {
    for (var digits = 1; digits < 10; digits++) {
      var seen = {};
      var clash = values.some(function (v) {
        var label = v.toExponential(digits);
        if (seen[label]) return true;
        seen[label] = true;
        return false;
      });
      if (!clash) return digits;
    }
    return 10;
  }

  // The fewest significant digits at which every tick's label differs (a flat series' axis spans a hair).
  function plainTicks(v, index, ticks) {
    if (!numeric(v)) return v;
    var values = ticks.map(function (t) { return t.value; });
    for (var digits = 1; digits < 12; digits++) {
      var labels = values.map(function (x) { return String(Number(x.toPrecision(digits))); });
      if (new Set(labels).size === labels.length) return String(Number(v.toPrecision(digits)));
    }
    return String(v);
  }

  function clock(seconds) {
    if (!numeric(seconds)) return "";
    var total = Math.max(0, Math.round(seconds));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function create(root) {
    var hasChart = typeof window.Chart !== "undefined";
    if (hasChart) {
      window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      window.Chart.defaults.color = "#667085";
    }
    var distill = root.getAttribute("data-kind") === "distill";
    var startedAt = Date.parse(root.getAttribute("data-started-at") || "") / 1000; // NaN until it starts
    var firstTime = null; // the first point's time: the origin of the time axis when the start is unknown
    var xMode = "step";
    var charts = {};
    var series = {}; // name -> array of {x, y, step, epoch, t}, shared by reference with the chart datasets
    var smoothers = {};
    var epochAt = {}; // step -> fractional epoch, from the training points (an evaluation's own epoch)
    var latest = {}; // "val/loss" -> {value, step}
    var latestDirty = false;
    var pointCount = 0;
    var lastSeq = 0;
    var received = []; // every point shown, in order: a rewind rebuilds the series from it
    var pending = false; // a render is scheduled for the next animation frame
    var syncing = false; // applying one chart's zoom to the others
    var resetButton = document.getElementById("zoom-reset");

    function points(name) {
      if (!series[name]) series[name] = [];
      return series[name];
    }

    function line(label, name, color, opts) {
      var ds = {
        label: label, data: points(name), borderColor: color, backgroundColor: color, borderWidth: 1.5,
        pointRadius: 0, pointHoverRadius: 3, tension: 0, spanGaps: true,
      };
      for (var k in opts || {}) ds[k] = opts[k];
      return ds;
    }

    function faint(label, name, color) {
      return line(label, name, color, { borderWidth: 1, borderColor: color + "55", backgroundColor: color + "55" });
    }

    function smoothed(label, name, color) {
      return line(label, name + "~", color, { borderWidth: 2 });
    }

    function evalPoints(label, name, color, style) {
      return line(label, name, color, {
        pointRadius: 4, pointHoverRadius: 6, borderWidth: 2, pointStyle: style || "circle", showLine: true,
      });
    }

    function xTick(value) {
      if (xMode === "time") return clock(value);
      if (xMode === "epoch") return String(Number(value.toFixed(2)));
      return Number.isInteger(value) ? String(value) : "";
    }

    function pointTitle(raw) {
      var parts = ["step " + raw.step];
      if (numeric(raw.epoch)) parts.push("epoch " + raw.epoch.toFixed(2));
      if (numeric(raw.t)) parts.push(clock(raw.t));
      return parts.join(" · ");
    }

    // After a drag (or pinch, or shift-drag pan) on one chart, every chart shows the same stretch of x.
    function followZoom(context) {
      if (syncing) return;
      syncing = true;
      var scale = context.chart.scales.x;
      Object.keys(charts).forEach(function (k) {
        var chart = charts[k];
        if (chart && chart !== context.chart) chart.zoomScale("x", { min: scale.min, max: scale.max }, "none");
      });
      syncing = false;
      if (resetButton) resetButton.hidden = false;
    }

    function resetZoom() {
      syncing = true; // the plugin's reset calls onZoomComplete: no chart follows another's reset
      Object.keys(charts).forEach(function (k) {
        if (charts[k] && charts[k].resetZoom) charts[k].resetZoom("none");
      });
      syncing = false;
      if (resetButton) resetButton.hidden = true;
    }

    function makeChart(id, datasets, yOptions) {
      var canvas = document.getElementById(id);
      if (!canvas || !hasChart) return null;
      canvas.addEventListener("dblclick", resetZoom);
      return new window.Chart(canvas, {
        type: "line",
        data: { datasets: datasets },
        options: {
          parsing: false,
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          interaction: { mode: "nearest", axis: "x", intersect: false },
          scales: {
            x: { type: "linear", title: { display: true, text: AXIS_TITLES[xMode] }, ticks: { callback: xTick } },
            y: Object.assign({ ticks: { callback: plainTicks } }, yOptions),
          },
          plugins: {
            legend: {
              labels: {
                boxWidth: 8, boxHeight: 8, usePointStyle: true, pointStyleWidth: 10,
                // A series with no points yet (the test before the end, GPU memory on a CPU) is not listed.
                filter: function (item, data) { return data.datasets[item.datasetIndex].data.length > 0; },
              },
            },
            tooltip: {
              callbacks: {
                title: function (items) { return items.length ? pointTitle(items[0].raw) : ""; },
                label: function (item) { return item.dataset.label + ": " + exact(item.parsed.y); },
              },
            },
            zoom: {
              zoom: {
                drag: { enabled: true, threshold: 5, backgroundColor: "rgba(79, 70, 229, 0.12)" },
                wheel: { enabled: true, modifierKey: "ctrl" },
                pinch: { enabled: true },
                mode: "x",
                onZoomComplete: followZoom,
              },
              pan: { enabled: true, mode: "x", modifierKey: "shift", onPanComplete: followZoom },
            },
          },
        },
      });
    }

    if (distill) {
      // Cross-entropy only on this axis: training's hard part beside validation and test, which are cross-entropy.
      charts.loss = makeChart("chart-loss", [
        faint("train cross-entropy (hard part)", "train/hard_loss", "#6366f1"),
        smoothed("train cross-entropy (smoothed)", "train/hard_loss", "#4f46e5"),
        evalPoints("val loss (cross-entropy)", "val/loss", "#f79009"),
        evalPoints("test loss (cross-entropy)", "test/loss", "#d92d20", "rectRot"),
      ], { title: { display: true, text: "cross-entropy" } });
      charts.distill = makeChart("chart-distill", [
        faint("distillation loss", "train/loss", "#667085"),
        smoothed("distillation loss (smoothed)", "train/loss", "#344054"),
        smoothed("soft part: KL·T² (smoothed)", "train/soft_loss", "#c11574"),
        smoothed("hard part: cross-entropy (smoothed)", "train/hard_loss", "#4f46e5"),
        smoothed("hidden-state part (smoothed)", "train/hidden_loss", "#0086c9"),
      ], { title: { display: true, text: "loss" } });
      // How often the student's top class is the teacher's: per batch while it trains, then on the held-out rows.
      charts.agreement = makeChart("chart-agreement", [
        faint("train agreement", "train/agreement", "#0e9384"),
        smoothed("train agreement (smoothed)", "train/agreement", "#107569"),
        evalPoints("val agreement", "val/agreement", "#f79009"),
        evalPoints("test agreement", "test/agreement", "#d92d20", "rectRot"),
      ], { title: { display: true, text: "share of rows" }, suggestedMin: 0.5, suggestedMax: 1 });
    } else {
      charts.loss = makeChart("chart-loss", [
        faint("train loss", "train/loss", "#6366f1"),
        smoothed("train loss (smoothed)", "train/loss", "#4f46e5"),
        evalPoints("val loss", "val/loss", "#f79009"),
        evalPoints("test loss", "test/loss", "#d92d20", "rectRot"),
      ], { title: { display: true, text: "cross-entropy" } });
    }

    charts.accuracy = makeChart("chart-accuracy", [
      faint("train accuracy", "train/accuracy", "#12b76a"),
      smoothed("train accuracy (smoothed)", "train/accuracy", "#079455"),
      evalPoints("val accuracy", "val/accuracy", "#f79009"),
      evalPoints("test accuracy", "test/accuracy", "#d92d20", "rectRot"),
    ], { title: { display: true, text: "accuracy" }, suggestedMin: 0.5, suggestedMax: 1 });

    charts.lr = makeChart("chart-lr", [
      line("learning rate", "lr", "#7a5af8", { borderWidth: 2 }),
    ], {
      title: { display: true, text: "lr" },
      ticks: {
        callback: function (v, index, ticks) {
          if (!numeric(v)) return v;
          return v === 0 ? "0" : v.toExponential(distinctDigits(ticks.map(function (t) { return t.value; })));
        },
      },
    });

    charts.throughput = makeChart("chart-throughput", [
      faint("samples/s", "train/samples_per_s", "#0086c9"),
      smoothed("samples/s (smoothed)", "train/samples_per_s", "#026aa2"),
    ], { title: { display: true, text: "rows/s" }, beginAtZero: true });

    charts.memory = makeChart("chart-memory", [
      line("process memory (RSS)", "system/rss_mb", "#475467", { borderWidth: 2 }),
      line("GPU memory (held by PyTorch)", "system/gpu_memory_mb", "#079455", { borderWidth: 2 }),
    ], { title: { display: true, text: "MiB" }, beginAtZero: true });

    if (resetButton) resetButton.addEventListener("click", resetZoom);
    document.querySelectorAll('#chart-controls input[name="x-axis"]').forEach(function (input) {
      input.addEventListener("change", function () { if (input.checked) setXMode(input.value); });
    });

    function xOf(p) {
      return xMode === "time" ? p.t : xMode === "epoch" ? p.epoch : p.step;
    }

    function setXMode(mode) {
      if (!AXIS_TITLES[mode] || mode === xMode) return;
      xMode = mode;
      resetZoom();
      Object.keys(series).forEach(function (name) {
        series[name].forEach(function (p) { p.x = xOf(p); });
      });
      Object.keys(charts).forEach(function (k) {
        if (charts[k]) charts[k].options.scales.x.title.text = AXIS_TITLES[mode];
      });
      scheduleRender();
    }

    function smooth(name, where, value) {
      var s = smoothers[name] || (smoothers[name] = { ema: 0, n: 0 });
      s.n += 1;
      s.ema = SMOOTHING * s.ema + (1 - SMOOTHING) * value;
      push(name + "~", where, s.ema / (1 - Math.pow(SMOOTHING, s.n)));
    }

    function push(name, where, value) {
      var p = { step: where.step, epoch: where.epoch, t: where.t, y: value };
      p.x = xOf(p);
      points(name).push(p);
    }

    function plot(p) {
      var values = p.values || {};
      var evaluation = p.kind === "val" || p.kind === "test";
      if (p.kind === "train" && numeric(values.epoch)) epochAt[p.step] = values.epoch;
      var where = { step: p.step, epoch: numeric(values.epoch) ? values.epoch : epochAt[p.step], t: null };
      if (numeric(values.time)) {
        if (firstTime === null) firstTime = values.time;
        where.t = values.time - (isFinite(startedAt) ? startedAt : firstTime);
      }
      Object.keys(values).forEach(function (key) {
        var v = values[key];
        if (!numeric(v) || NOT_SERIES[key]) return;
        push(key, where, v);
        if (p.kind === "train" && SMOOTHED.indexOf(key) !== -1) smooth(key, where, v);
        if (evaluation) latest[key] = { value: v, step: p.step };
      });
      if (evaluation) latestDirty = true;
      if (p.seq > lastSeq) lastSeq = p.seq;
      pointCount += 1;
      scheduleRender();
    }

    function addPoint(p) {
      if (typeof p.seq !== "number" || p.seq <= lastSeq) return; // already have it
      received.push(p);
      plot(p);
    }

    // A run that resumed from a checkpoint dropped what the dead run before it reported past that step (each
    // rewind is [step, last seq of the dead run]; applying one twice changes nothing): drop them here too.
    function applyRewinds(rewinds) {
      if (!Array.isArray(rewinds) || !rewinds.length) return;
      var kept = received.filter(function (p) {
        return !rewinds.some(function (r) {
          var past = p.step > r[0] || (p.step === r[0] && (p.kind === "val" || p.kind === "test"));
          return past && p.seq <= r[1];
        });
      });
      if (kept.length === received.length) return;
      received = kept;
      Object.keys(series).forEach(function (name) { series[name].length = 0; }); // the charts hold these arrays
      smoothers = {};
      latest = {};
      epochAt = {};
      pointCount = 0;
      kept.forEach(plot);
      latestDirty = true;
      scheduleRender();
    }

    // The job started (a status message says when): times are measured from then.
    function setStartedAt(iso) {
      var t = Date.parse(iso || "") / 1000;
      if (isFinite(t) && !isFinite(startedAt)) startedAt = t;
    }

    function scheduleRender() {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(render);
    }

    function render() {
      pending = false;
      Object.keys(charts).forEach(function (k) {
        if (charts[k]) charts[k].update("none");
      });
      var count = document.getElementById("metrics-count");
      if (count) count.textContent = pointCount + " metric points";
      if (pointCount) {
        document.querySelectorAll(".chart-empty").forEach(function (el) { el.hidden = true; });
      }
      if (latestDirty) renderLatest();
    }

    function renderLatest() {
      latestDirty = false;
      var body = document.getElementById("latest-metrics");
      if (!body) return;
      var keys = Object.keys(latest).sort();
      if (!keys.length) return;
      body.textContent = "";
      keys.forEach(function (key) {
        var tr = document.createElement("tr");
        var th = document.createElement("th");
        th.textContent = key;
        var value = document.createElement("td");
        value.className = "num";
        value.textContent = fmt(latest[key].value);
        value.title = exact(latest[key].value);
        var step = document.createElement("td");
        step.className = "num";
        step.textContent = latest[key].step;
        tr.appendChild(th);
        tr.appendChild(value);
        tr.appendChild(step);
        body.appendChild(tr);
      });
    }

    return {
      addPoint: addPoint,
      applyRewinds: applyRewinds,
      setStartedAt: setStartedAt,
      setXMode: setXMode,
      lastSeq: function () { return lastSeq; },
    };
  }

  return { create: create, distinctDigits: distinctDigits, exact: exact, clock: clock };
})();
