// The model page's reliability diagram: per confidence bin, the accuracy (bars) beside the mean confidence
// (points), over the diagonal a perfectly calibrated model would follow. The bins come from the stored metrics.
(function () {
  "use strict";
  var data = document.getElementById("model-reliability");
  var canvas = document.getElementById("chart-reliability");
  if (!data || !canvas || typeof window.Chart === "undefined") return;
  var bins = JSON.parse(data.textContent) || [];
  if (!bins.length) return;

  function num(v) { return typeof v === "number" && isFinite(v); }
  function mid(b) { return (b.low + b.high) / 2; }

  window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  window.Chart.defaults.color = "#667085";
  var labels = bins.map(function (b) { return mid(b).toFixed(2); });
  canvas.chart = new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: labels,
      datasets: [
        {
          label: "accuracy", data: bins.map(function (b) { return b.count ? b.accuracy : null; }),
          backgroundColor: "rgba(79, 70, 229, 0.55)", borderColor: "#4f46e5", borderWidth: 1, order: 2,
          barPercentage: 1, categoryPercentage: 0.95,
        },
        {
          type: "line", label: "mean confidence", data: bins.map(function (b) { return b.count ? b.confidence : null; }),
          borderColor: "#d92d20", backgroundColor: "#d92d20", showLine: false, pointRadius: 4, order: 1,
        },
        {
          type: "line", label: "perfect calibration", data: bins.map(mid),
          borderColor: "#667085", borderDash: [4, 4], borderWidth: 1.5, pointRadius: 0, order: 0,
        },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: { title: { display: true, text: "confidence (bin centre)" } },
        y: { min: 0, max: 1, title: { display: true, text: "accuracy" } },
      },
      plugins: {
        legend: { labels: { boxWidth: 8, boxHeight: 8 } },
        tooltip: {
          callbacks: {
            title: function (items) {
              var b = bins[items[0].dataIndex];
              return "confidence " + b.low.toFixed(3) + "–" + b.high.toFixed(3) + " · " + b.count + " texts";
            },
            label: function (item) {
              return item.dataset.label + ": " + (num(item.parsed.y) ? item.parsed.y.toFixed(4) : "—");
            },
          },
        },
      },
    },
  });
})();
