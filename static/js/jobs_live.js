// Dashboard: keep the jobs table's status badges and progress bars live over /ws/jobs/.
(function () {
  "use strict";

  var FINISHED = ["succeeded", "failed", "cancelled"];
  var STATUSES = ["queued", "running"].concat(FINISHED);
  var table = document.getElementById("jobs-table");
  var notice = document.getElementById("jobs-live-notice");
  var noticeText = document.getElementById("jobs-live-notice-text");
  var indicator = document.getElementById("live-indicator");
  if (!table || !("WebSocket" in window)) return;

  var socket = null;
  var delay = 1000;
  var unknownJobs = {};
  var newModels = 0;

  function setIndicator(state, text) {
    if (!indicator) return;
    indicator.classList.remove("online", "offline");
    if (state) indicator.classList.add(state);
    indicator.textContent = text;
  }

  function showNotice() {
    if (!notice) return;
    var parts = [];
    var n = Object.keys(unknownJobs).length;
    if (n) parts.push(n === 1 ? "1 new job" : n + " new jobs");
    if (newModels) parts.push(newModels === 1 ? "1 new model" : newModels + " new models");
    noticeText.textContent = parts.join(" and ") + " — reload to see " + (n + newModels === 1 ? "it." : "them.");
    notice.hidden = false;
  }

  function updateRow(row, status, progress) {
    var previous = row.getAttribute("data-status");
    row.setAttribute("data-status", status);

    var badge = row.querySelector(".job-status .badge");
    if (badge) {
      STATUSES.forEach(function (s) { badge.classList.remove("badge-" + s); });
      badge.classList.add("badge-" + status);
      badge.textContent = status;
    }

    var bar = row.querySelector(".job-progress .progress");
    if (bar && typeof progress === "number") {
      var pct = Math.round(Math.max(0, Math.min(1, progress)) * 100);
      STATUSES.forEach(function (s) { bar.classList.remove(s); });
      bar.classList.add(status);
      bar.setAttribute("aria-valuenow", String(pct));
      var fill = bar.querySelector(".progress-bar");
      if (fill) fill.style.width = pct + "%";
      var text = row.querySelector(".job-progress .progress-text");
      if (text) text.textContent = pct + "%";
    }
    return previous;
  }

  function onMessage(event) {
    var msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    if (!msg || msg.type !== "status" || msg.job == null) return;
    var row = table.querySelector('tr[data-job-id="' + String(msg.job) + '"]');
    if (!row) {
      unknownJobs[msg.job] = true;
      showNotice();
      return;
    }
    var previous = updateRow(row, msg.status, msg.progress);
    if (msg.status === "succeeded" && previous !== "succeeded" && msg.result_model) {
      newModels += 1;
      showNotice();
    }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/jobs/");
    socket.onopen = function () {
      delay = 1000;
      setIndicator("online", "live");
    };
    socket.onmessage = onMessage;
    socket.onclose = function (event) {
      socket = null;
      if (event.code === 4403) {
        setIndicator("offline", "not signed in");
        return;
      }
      setIndicator("offline", "reconnecting…");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }

  connect();
})();
