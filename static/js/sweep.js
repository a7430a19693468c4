// Sweep page: each run's validation and test accuracy as a chart; when one of its jobs finishes, the runs are
// read again from the API and the table's results, the best marker and the chart follow.
(function () {
  "use strict";

  var source = document.getElementById("sweep-runs");
  var table = document.getElementById("jobs-table");
  if (!source || !table) return;
  var url = document.getElementById("sweep-page").getAttribute("data-url");
  var summary = JSON.parse(source.textContent);
  var FINISHED = ["succeeded", "failed", "cancelled"];
  var chart = null;

  function label(run) {
    return "#" + run.job + " " + Object.keys(run.values).map(function (k) { return k + "=" + run.values[k]; }).join(" ");
  }

  function drawChart() {
    var canvas = document.getElementById("chart-runs");
    if (!canvas || typeof window.Chart === "undefined") return;
    var runs = summary.runs.filter(function (r) { return r.valid_accuracy !== null; });
    canvas.parentNode.querySelector(".chart-empty").hidden = runs.length > 0;
    var data = {
      labels: runs.map(label),
      datasets: [
        { type: "bar", label: "valid accuracy", order: 2, data: runs.map(function (r) { return r.valid_accuracy; }),
          backgroundColor: runs.map(function (r) { return r.job === summary.best ? "#4f46e5" : "#c7d2fe"; }) },
        { type: "line", label: "test accuracy", order: 1, data: runs.map(function (r) { return r.test_accuracy; }),
          showLine: false, pointRadius: 6, pointStyle: "rectRot", borderColor: "#ffffff", borderWidth: 1.5,
          backgroundColor: "#079455" },
      ],
    };
    // Runs differ by a few points: start the axis a little under the lowest accuracy, not at zero.
    var values = [];
    runs.forEach(function (r) {
      values.push(r.valid_accuracy);
      if (r.test_accuracy !== null) values.push(r.test_accuracy);
    });
    var min = values.length ? Math.max(0, Math.floor((Math.min.apply(null, values) - 0.05) * 20) / 20) : 0;
    if (chart) { chart.data = data; chart.options.scales.y.min = min; chart.update(); return; }
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    chart = new window.Chart(canvas, {
      data: data,
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { min: min, max: 1, title: { display: true, text: "accuracy" } } },
        plugins: { legend: { labels: { boxWidth: 8, boxHeight: 8, usePointStyle: true } } },
      },
    });
  }

  function number(value) {
    if (value === null || value === undefined) {
      var dash = document.createElement("span");
      dash.className = "muted";
      dash.textContent = "—";
      return dash;
    }
    return document.createTextNode(value.toFixed(4));
  }

  function renderRows() {
    summary.runs.forEach(function (run) {
      var row = table.querySelector('tr[data-job-id="' + run.job + '"]');
      if (!row) return;
      ["valid_accuracy", "test_accuracy", "avg_train_loss"].forEach(function (field) {
        var cell = row.querySelector('[data-field="' + field + '"]');
        if (cell) cell.replaceChildren(number(run[field]));
      });
      var modelCell = row.querySelector('[data-field="model"]');
      if (modelCell && run.model) {
        var link = document.createElement("a");
        link.href = "/models/" + run.model + "/";
        link.textContent = "#" + run.model;
        modelCell.replaceChildren(link);
      }
      var best = run.job === summary.best;
      row.classList.toggle("best", best);
      var badge = row.querySelector('[data-role="best"]');
      if (badge) badge.hidden = !best;
    });
  }

  // The promote button follows the best run's model.
  function renderPromote() {
    var form = document.getElementById("promote-best-form");
    var best = summary.runs.filter(function (r) { return r.job === summary.best; })[0];
    if (!form || !best || !best.model || form.action.indexOf("/models/" + best.model + "/") !== -1) return;
    form.action = "/models/" + best.model + "/promote/";
    var button = form.querySelector("button");
    button.disabled = false;
    button.removeAttribute("title");
    button.textContent = "Promote the best (model #" + best.model + ")";
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) return;
        summary = body.runs;
        renderRows();
        renderPromote();
        drawChart();
      });
  }

  document.addEventListener("distillery:job-status", function (event) {
    var msg = event.detail;
    var listed = table.querySelector('tr[data-job-id="' + msg.job + '"]');
    if (listed && FINISHED.indexOf(msg.status) !== -1) refresh();
  });

  drawChart();
})();
