// Dashboard and sweep page: keep the jobs table's status badges and progress bars live over /ws/jobs/. A table
// with data-only-listed (a sweep's) ignores the user's other jobs.
(function () {
  "use strict";

  var live = window.DistilleryLive;
  var table = document.getElementById("jobs-table");
  var notice = document.getElementById("jobs-live-notice");
  var noticeText = document.getElementById("jobs-live-notice-text");
  var indicator = document.getElementById("live-indicator");
  if (!table || !("WebSocket" in window)) return;

  var onlyListed = table.hasAttribute("data-only-listed");
  var unknownJobs = {};
  var newModels = 0;

  function showNotice() {
    if (!notice) return;
    var parts = [];
    var n = Object.keys(unknownJobs).length;
    if (n) parts.push(n === 1 ? "1 new job" : n + " new jobs");
    if (newModels) parts.push(newModels === 1 ? "1 new model" : newModels + " new models");
    noticeText.textContent = parts.join(" and ") + " — reload to see " + (n + newModels === 1 ? "it." : "them.");
    notice.hidden = false;
  }

  function updateRow(row, status, progress, phase) {
    var previous = row.getAttribute("data-status");
    row.setAttribute("data-status", status);
    var cell = row.querySelector(".job-progress");
    if (cell) cell.title = status === "running" && phase ? phase : "";

    live.setStatus(
      row.querySelector(".job-status .badge"),
      row.querySelector(".job-progress .progress"),
      row.querySelector(".job-progress .progress-text"),
      status,
      progress
    );
    return previous;
  }

  function onMessage(msg) {
    // The places of the user's queued jobs: the queue card's (queue.js).
    if (msg.type === "queue") document.dispatchEvent(new CustomEvent("distillery:job-queue", { detail: msg }));
    if (msg.type !== "status" || msg.job == null) return;
    // Other scripts of the page (the sweep's) follow the same messages.
    document.dispatchEvent(new CustomEvent("distillery:job-status", { detail: msg }));
    var row = table.querySelector('tr[data-job-id="' + String(msg.job) + '"]');
    if (!row) {
      if (onlyListed) return;
      unknownJobs[msg.job] = true;
      showNotice();
      return;
    }
    var previous = updateRow(row, msg.status, msg.progress, msg.phase);
    if (onlyListed) return;  // the sweep page shows its runs' results itself
    if (msg.status === "succeeded" && previous !== "succeeded" && msg.result_model) {
      newModels += 1;
      showNotice();
    }
  }

  live.follow({
    // ?queue=1: the queue card wants its places on every (re)connect, not only at the next change.
    path: function () { return document.getElementById("queue") ? "/ws/jobs/?queue=1" : "/ws/jobs/"; },
    indicator: indicator,
    refusedText: "not signed in",
    onMessage: onMessage,
  });
})();
