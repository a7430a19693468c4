// Compare page: every model's training curves overlaid, from the comparison embedded in the page.
(function () {
  "use strict";

  var source = document.getElementById("comparison");
  if (!source || typeof window.Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var SMOOTHING = 0.9; // the job page's moving average, so a curve here looks as it did there
  var COLORS = ["#4f46e5", "#079455", "#dc6803", "#d92d20", "#0086c9", "#7a5af8", "#c11574", "#475467"];

  window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  window.Chart.defaults.color = "#667085";

  function smooth(points) {
    var ema = 0;
    return points.map(function (p, i) {
      ema = SMOOTHING * ema + (1 - SMOOTHING) * p[1];
      return { x: p[0], y: ema / (1 - Math.pow(SMOOTHING, i + 1)) };
    });
  }

  function datasets(key, withValidation) {
    var out = [];
    data.models.forEach(function (model, i) {
      var curves = data.curves[String(model.id)] || {};
      var color = COLORS[i % COLORS.length];
      var curve = curves[key] || [], label = model.name;
      // Loss is cross-entropy for every model: a distillation's hard part, since its loss mixes in the KL.
      if (key === "train/loss" && (curves["train/hard_loss"] || []).length) {
        curve = curves["train/hard_loss"];
        label = model.name + " (cross-entropy part)";
      }
      if (curve.length) {
        out.push({
          label: label, data: smooth(curve), borderColor: color, backgroundColor: color,
          borderWidth: 1.8, pointRadius: 0, pointHoverRadius: 3, tension: 0,
        });
      }
      if (withValidation && (curves["val/accuracy"] || []).length) {
        out.push({
          label: model.name + " (valid)",
          data: curves["val/accuracy"].map(function (p) { return { x: p[0], y: p[1] }; }),
          borderColor: color, backgroundColor: color, showLine: false, pointRadius: 5, pointStyle: "rectRot",
        });
      }
    });
    return out;
  }

  function chart(id, sets, yTitle) {
    var canvas = document.getElementById(id);
    if (!canvas || !sets.length) return;
    canvas.parentNode.querySelector(".chart-empty").hidden = true;
    new window.Chart(canvas, {
      type: "line",
      data: { datasets: sets },
      options: {
        parsing: false, animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 } },
          y: { title: { display: !!yTitle, text: yTitle || "" } },
        },
        plugins: { legend: { labels: { boxWidth: 8, boxHeight: 8, usePointStyle: true } } },
      },
    });
  }

  chart("chart-loss", datasets("train/loss", false), "cross-entropy");
  chart("chart-accuracy", datasets("train/accuracy", true));

  // Re-measure: the web process times every model now, the same way; the page reloads to show the figures.
  var measure = document.getElementById("measure-form");
  if (measure) {
    measure.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = measure.querySelector("button");
      var status = document.getElementById("measure-status");
      var token = measure.querySelector("input[name=csrfmiddlewaretoken]").value;
      button.disabled = true;
      status.textContent = "Measuring every model at fp32 and int8 (up to a minute)…";
      fetch("/api/models/compare/measure/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ ids: measure.getAttribute("data-ids") }),
      }).then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) throw new Error(body.detail || JSON.stringify(body));
          return body;
        });
      }).then(function () {
        status.textContent = "Measured; showing the new figures…";
        window.location.reload();
      }).catch(function (e) {
        status.textContent = "Could not measure: " + e.message;
        button.disabled = false;
      });
    });
  }
})();
