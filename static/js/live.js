// Shared by the dashboard (jobs_live.js) and the job page (job.js): job status badges and progress bars,
// the live indicator, and a websocket that reconnects with backoff.
window.DistilleryLive = (function () {
  "use strict";

  var FINISHED = ["succeeded", "failed", "cancelled"];
  var STATUSES = ["queued", "running"].concat(FINISHED);

  function isFinished(status) { return FINISHED.indexOf(status) !== -1; }

  function setIndicator(indicator, state, text) {
    if (!indicator) return;
    indicator.classList.remove("online", "offline");
    if (state) indicator.classList.add(state);
    indicator.textContent = text;
  }

  // `badge` is a .badge element; `progress` a .progress element with a .progress-bar inside, `text` the
  // element showing the percentage. Any of them may be missing.
  function setStatus(badge, progress, text, status, fraction) {
    if (badge) {
      STATUSES.forEach(function (s) { badge.classList.remove("badge-" + s); });
      badge.classList.add("badge-" + status);
      badge.textContent = status;
    }
    if (progress && typeof fraction === "number") {
      var pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
      STATUSES.forEach(function (s) { progress.classList.remove(s); });
      progress.classList.add(status);
      progress.setAttribute("aria-valuenow", String(pct));
      var fill = progress.querySelector(".progress-bar");
      if (fill) fill.style.width = pct + "%";
      if (text) text.textContent = pct + "%";
    }
  }

  // Open the websocket at path() (called again on each reconnect), pass each parsed message to onMessage,
  // and reconnect after 1, 2, 4 ... 10 s unless the server refused us (4403) or done(closeEvent) says so.
  // 1013 (try again later): the server cannot reach Redis; it opened the socket only to say so, so the wait
  // keeps growing as for a failed connect.
  var TRY_AGAIN_LATER = 1013;
  function follow(options) {
    var delay = 1000;
    var indicator = options.indicator;
    function connect() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + location.host + options.path());
      var opened = false;
      socket.onopen = function () {
        opened = true;
        setIndicator(indicator, "online", "live");
      };
      socket.onmessage = function (event) {
        var msg;
        try { msg = JSON.parse(event.data); } catch (e) { return; }
        if (msg) options.onMessage(msg);
      };
      socket.onclose = function (event) {
        if (event.code === 4403) {
          setIndicator(indicator, "offline", options.refusedText || "not allowed");
          return;
        }
        if (options.done && options.done(event)) {
          setIndicator(indicator, null, "finished");
          return;
        }
        if (opened && event.code !== TRY_AGAIN_LATER) delay = 1000; // it was live: start the backoff again
        setIndicator(indicator, "offline", "reconnecting…");
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    connect();
  }

  return { isFinished: isFinished, setIndicator: setIndicator, setStatus: setStatus, follow: follow };
})();
