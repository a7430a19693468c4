// Job page: load the metric history, then follow the job live over its websocket.
(function () {
  "use strict";

  var root = document.getElementById("job-page");
  if (!root) return;

  var live = window.DistilleryLive;
  var SMOOTHING = 0.9; // exponential moving average weight for the noisy per-batch series

  var metricsUrl = root.getAttribute("data-metrics-url");
  var wsPath = root.getAttribute("data-ws-path");
  var modelUrl = root.getAttribute("data-model-url") || "/models/0/";
  var status = root.getAttribute("data-status");
  var lastSeq = 0;
  var indicator = document.getElementById("live-indicator");

  // ---------------------------------------------------------------- status


  // The server renders times in UTC as "YYYY-MM-DD HH:MM:SS" with the ISO form as a title; events carry ISO.
  function setTime(id, iso) {
    var cell = document.getElementById(id);
    if (!cell || !iso) return;
    var span = document.createElement("span");
    span.title = iso;
    span.textContent = new Date(iso).toISOString().slice(0, 19).replace("T", " ");
    cell.replaceChildren(span);
  }

  // "about 4 min left" from the server's estimate of the training time left (null: none yet).
  function showEta(seconds) {
    var eta = document.getElementById("job-eta");
    if (!eta) return;
    if (typeof seconds !== "number" || !isFinite(seconds)) { eta.textContent = ""; return; }
    var text;
    if (seconds < 60) text = Math.max(1, Math.round(seconds)) + " s";
    else if (seconds < 3600) text = Math.round(seconds / 60) + " min";
    else text = Math.floor(seconds / 3600) + " h " + Math.round((seconds % 3600) / 60) + " min";
    eta.textContent = "· about " + text + " of training left";
  }
  (function () {
    var eta = document.getElementById("job-eta");
    var initial = eta && eta.getAttribute("data-eta");
    if (initial) showEta(parseFloat(initial));
  })();

  function applyStatus(msg) {
    status = msg.status;
    applyRewinds(msg.rewinds);
    root.setAttribute("data-status", status);

    live.setStatus(
      document.querySelector("#job-status .badge"),
      document.querySelector("#job-progress .progress"),
      document.querySelector("#job-progress .progress-text"),
      status,
      msg.progress
    );

    var phase = document.getElementById("job-phase");
    if (phase) phase.textContent = status === "running" && msg.phase ? msg.phase : "";
    showEta(status === "running" ? msg.eta_seconds : null);
    var queue = document.getElementById("job-queue");
    if (queue && status !== "queued") queue.hidden = true;

    setTime("job-started", msg.started_at);
    setTime("job-finished", msg.finished_at);

    var cancel = document.getElementById("cancel-form");
    if (cancel && live.isFinished(status)) cancel.hidden = true;
    var remove = document.getElementById("delete-form");
    if (remove && live.isFinished(status)) remove.hidden = false;

    var errorCard = document.getElementById("error-card");
    if (errorCard) {
      if (status === "failed" && msg.error) {
        document.getElementById("job-error").textContent = msg.error;
        errorCard.hidden = false;
      } else {
        errorCard.hidden = true;
      }
    }

    var link = document.getElementById("result-link");
    if (link && msg.result_model) {
      if (link.hidden) {
        link.href = modelUrl.replace(/0\/?$/, String(msg.result_model) + "/");
        link.textContent = "View model →";
        link.hidden = false;
      }
    }
    var output = document.getElementById("output-link");
    if (output && msg.output) output.hidden = false;  // a classify job's CSV is ready
  }

  // ---------------------------------------------------------------- charts

  var hasChart = typeof window.Chart !== "undefined";
  if (hasChart) {
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#667085";
  }
  var charts = {};
  var series = {}; // name -> array of {x, y}, shared by reference with the chart datasets
  var smoothers = {};
  var latest = {}; // "val/loss" -> {value, step}
  var latestDirty = false;
  var pointCount = 0;
  var received = []; // every point shown, in order: a rewind rebuilds the series from it
  var pending = false; // a render is scheduled for the next animation frame

  function points(name) {
    if (!series[name]) series[name] = [];
    return series[name];
  }

  function numeric(v) { return typeof v === "number" && isFinite(v); }

  function fmt(v) {
    if (!numeric(v)) return String(v);
    if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(3);
    return (Math.round(v * 10000) / 10000).toString();
  }

  function line(label, name, color, opts) {
    var ds = {
      label: label,
      data: points(name),
      borderColor: color,
      backgroundColor: color,
      borderWidth: 1.5,
      pointRadius: 0,
      pointHoverRadius: 3,
      tension: 0,
      spanGaps: true,
    };
    for (var k in opts || {}) ds[k] = opts[k];
    return ds;
  }

  function faint(label, name, color) {
    return line(label, name, color, { borderWidth: 1, borderColor: color + "55", backgroundColor: color + "55" });
  }

  function evalPoints(label, name, color, style) {
    return line(label, name, color, {
      pointRadius: 4, pointHoverRadius: 6, borderWidth: 2, pointStyle: style || "circle", showLine: true,
    });
  }

  function makeChart(id, datasets, yOptions) {
    var canvas = document.getElementById(id);
    if (!canvas || !hasChart) return null;
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
          x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } },
          y: yOptions || {},
        },
        plugins: {
          legend: { labels: { boxWidth: 8, boxHeight: 8, usePointStyle: true, pointStyleWidth: 10 } },
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? "step " + items[0].parsed.x : ""; },
              label: function (item) { return item.dataset.label + ": " + fmt(item.parsed.y); },
            },
          },
        },
      },
    });
  }

  charts.loss = makeChart("chart-loss", [
    faint("train loss", "train/loss", "#6366f1"),
    line("train loss (smoothed)", "train/loss~", "#4f46e5", { borderWidth: 2 }),
    evalPoints("val loss", "val/loss", "#f79009"),
    evalPoints("test loss", "test/loss", "#d92d20", "rectRot"),
  ], { title: { display: true, text: "loss" } });

  charts.accuracy = makeChart("chart-accuracy", [
    faint("train accuracy", "train/accuracy", "#12b76a"),
    line("train accuracy (smoothed)", "train/accuracy~", "#079455", { borderWidth: 2 }),
    evalPoints("val accuracy", "val/accuracy", "#f79009"),
    evalPoints("test accuracy", "test/accuracy", "#d92d20", "rectRot"),
  ], { title: { display: true, text: "accuracy" }, suggestedMin: 0.5, suggestedMax: 1 });

  charts.lr = makeChart("chart-lr", [
    line("learning rate", "lr", "#7a5af8", { borderWidth: 2 }),
  ], {
    title: { display: true, text: "lr" },
    ticks: { callback: function (v) { return numeric(v) ? v.toExponential(1) : v; } },
  });

  function smooth(name, step, value) {
    var s = smoothers[name] || (smoothers[name] = { ema: 0, n: 0 });
    s.n += 1;
    s.ema = SMOOTHING * s.ema + (1 - SMOOTHING) * value;
    points(name + "~").push({ x: step, y: s.ema / (1 - Math.pow(SMOOTHING, s.n)) });
  }

  function addPoint(p) {
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
    pointCount = 0;
    kept.forEach(plot);
    latestDirty = true;
    scheduleRender();
  }

  function plot(p) {
    var values = p.values || {};
    var step = p.step;
    Object.keys(values).forEach(function (key) {
      var v = values[key];
      if (!numeric(v)) return;
      points(key).push({ x: step, y: v });
      if (p.kind === "train" && (key === "train/loss" || key === "train/accuracy")) smooth(key, step, v);
      if (p.kind === "val" || p.kind === "test") latest[key] = { value: v, step: step };
    });
    if (p.kind === "val" || p.kind === "test") latestDirty = true;
    if (p.seq > lastSeq) lastSeq = p.seq;
    pointCount += 1;
    scheduleRender();
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
      var step = document.createElement("td");
      step.className = "num";
      step.textContent = latest[key].step;
      tr.appendChild(th);
      tr.appendChild(value);
      tr.appendChild(step);
      body.appendChild(tr);
    });
  }

  // ---------------------------------------------------------------- transport

  function onMessage(msg) {
    if (msg.type === "status") {
      applyStatus(msg);
    } else if (msg.type === "metric") {
      if (typeof msg.seq !== "number" || msg.seq <= lastSeq) return; // already have it
      addPoint(msg);
    }
  }

  function connect() {
    live.follow({
      path: function () { return wsPath + "?after=" + lastSeq; }, // a reconnect asks only for what it missed
      indicator: indicator,
      onMessage: onMessage,
      done: function (event) { return live.isFinished(status) && (event.wasClean || event.code === 1000); },
    });
  }

  function loadHistory() {
    return fetch(metricsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("metrics: HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        var list = Array.isArray(data) ? data : (data && data.results) || [];
        list.sort(function (a, b) { return a.seq - b.seq; });
        list.forEach(function (p) { if (p.seq > lastSeq) addPoint(p); });
      })
      .catch(function (err) {
        // The websocket replays the history after lastSeq, so a failed fetch only costs time.
        if (window.console) console.warn(err);
      });
  }

  if (!("WebSocket" in window)) {
    loadHistory();
    live.setIndicator(indicator, "offline", "no live updates");
    return;
  }
  loadHistory().then(connect);
})();
