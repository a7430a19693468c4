// Job page: load the metric history, then follow the job live over its websocket.
(function () {
  "use strict";

  var root = document.getElementById("job-page");
  if (!root) return;

  var live = window.DistilleryLive;

  var metricsUrl = root.getAttribute("data-metrics-url");
  var wsPath = root.getAttribute("data-ws-path");
  var modelUrl = root.getAttribute("data-model-url") || "/models/0/";
  var status = root.getAttribute("data-status");
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
    charts.applyRewinds(msg.rewinds);
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
    charts.setStartedAt(msg.started_at);
    showDuration(msg.started_at, msg.finished_at);

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
    if (output && msg.output) {
      output.hidden = false;  // a classify job's CSV is ready
      showClassifyResult();
    }
  }

  // "47 s", "3 min 12 s", "2 h 5 min": as the server writes it (jobs/templatetags/durations.py).
  function durationText(seconds) {
    var total = Math.max(0, Math.floor(seconds));
    if (total < 60) return total + " s";
    var minutes = Math.floor(total / 60), secs = total % 60;
    if (minutes < 60) return secs ? minutes + " min " + secs + " s" : minutes + " min";
    var hours = Math.floor(minutes / 60);
    minutes %= 60;
    return minutes ? hours + " h " + minutes + " min" : hours + " h";
  }

  function showDuration(startIso, endIso) {
    var item = document.getElementById("job-duration-item");
    var start = Date.parse(startIso || ""), end = Date.parse(endIso || "");
    if (!item || !isFinite(start) || !isFinite(end)) return;
    document.getElementById("job-duration").textContent = durationText((end - start) / 1000);
    item.hidden = false;
  }

  // A file classification that ends while its page is open: its label counts and first rows, as the page
  // renders them, fetched once.
  var classifyShown = false;
  function showClassifyResult() {
    var box = document.getElementById("classify-result");
    if (!box || classifyShown || box.childElementCount) return;
    classifyShown = true;
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("classify-result");
        if (fresh) box.replaceWith(fresh);
      })
      .catch(function (err) { if (window.console) console.warn(err); });
  }

  // ---------------------------------------------------------------- charts (job_charts.js)

  var charts = window.DistilleryJobCharts.create(root);

  // ---------------------------------------------------------------- log

  var logBox = document.getElementById("job-log");
  var lastLogSeq = 0;
  var LOG_LINES_SHOWN = 1000; // as many as the server keeps

  // One line of the worker's log for this job, each seq once; the view follows the newest line unless the
  // reader scrolled up.
  function addLogLine(msg) {
    if (!logBox || typeof msg.seq !== "number" || msg.seq <= lastLogSeq) return;
    var following = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 8;
    if (lastLogSeq === 0 && msg.seq > 1) {
      var dropped = document.createElement("div");
      dropped.className = "log-line muted";
      dropped.textContent = "… " + (msg.seq - 1) + " earlier lines are not kept";
      logBox.appendChild(dropped);
    }
    lastLogSeq = msg.seq;
    var row = document.createElement("div");
    row.className = "log-line log-" + String(msg.level || "").toLowerCase();
    row.setAttribute("data-seq", String(msg.seq));
    var time = document.createElement("time");
    time.dateTime = msg.time || "";
    time.textContent = (msg.time || "").slice(11, 19);
    var level = document.createElement("span");
    level.className = "log-level";
    level.textContent = msg.level || "";
    var text = document.createElement("span");
    text.className = "log-message";
    text.textContent = msg.message || "";
    row.appendChild(time);
    row.appendChild(level);
    row.appendChild(text);
    logBox.appendChild(row);
    var empty = document.getElementById("log-empty");
    if (empty) empty.remove();
    while (logBox.childElementCount > LOG_LINES_SHOWN) logBox.firstElementChild.remove();
    if (following) logBox.scrollTop = logBox.scrollHeight;
    var count = document.getElementById("log-count");
    if (count) count.textContent = msg.seq + " line" + (msg.seq === 1 ? "" : "s") + " from the worker";
  }

  // ---------------------------------------------------------------- transport

  function onMessage(msg) {
    if (msg.type === "status") {
      applyStatus(msg);
    } else if (msg.type === "metric") {
      charts.addPoint(msg); // each seq once
    } else if (msg.type === "log") {
      addLogLine(msg);
    }
  }

  function connect() {
    live.follow({
      // A reconnect asks only for what it missed.
      path: function () { return wsPath + "?after=" + charts.lastSeq() + "&logs_after=" + lastLogSeq; },
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
        list.forEach(charts.addPoint);
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
