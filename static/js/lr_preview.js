// The launch form's learning-rate preview: the schedule the form's values will train with, drawn before launch.
// The steps come from the chosen dataset's size through the server (GET /api/datasets/{id}/schedule/, which splits
// and batches as a run does); a sweep draws one line per learning rate, and one set of lines per other value swept
// (batch size, epochs, warm-up, row cap). Nothing is asked while a value is wrong: the form's inline check says so.
(function () {
  "use strict";
  var form = document.getElementById("job-form");
  var box = document.getElementById("lr-preview");
  if (!form || !box || typeof Chart === "undefined") return;
  var canvas = document.getElementById("chart-lr-preview");
  var chartBox = document.getElementById("lr-preview-chart"); // hidden while there is nothing to draw
  var summary = document.getElementById("lr-preview-summary");
  var url = box.dataset.url; // with 0 for the dataset's id
  // The fields the schedule depends on (jobs.training.schedule.SCHEDULE_PARAMETERS that the form has)
  var SWEPT = ["batch_size", "epochs", "warmup_ratio", "max_train_samples"];
  var MAX_FETCHES = 6; // combinations of the values above drawn; a bigger sweep shows its first ones
  var COLOURS = ["#7a5af8", "#0086c9", "#f79009", "#12b76a", "#d92d20", "#ee46bc", "#667085", "#079455"];
  var chart = null, asked = 0, typing = null;

  function field(name) { return form.querySelector('[name="' + name + '"]'); }
  function values(name) {
    var input = field(name);
    if (!input) return [""];
    var items = input.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    return items.length ? items : [""]; // "": the default (or the recipe's, as a launch merges them)
  }
  function say(text, className) {
    summary.textContent = text;
    summary.className = className || "muted small";
  }
  function clear() {
    if (chart) chart.data.datasets = [];
    if (chart) chart.update("none");
    chartBox.hidden = true;
    box.dataset.lines = "0";
  }

  // The combinations of the swept values other than the learning rate, at most MAX_FETCHES of them
  function combinations() {
    var combos = [{}];
    SWEPT.forEach(function (name) {
      var next = [];
      values(name).forEach(function (value) {
        combos.forEach(function (combo) {
          var c = Object.assign({}, combo);
          c[name] = value;
          next.push(c);
        });
      });
      combos = next;
    });
    return combos;
  }

  function query(combo) {
    var params = new URLSearchParams();
    params.set("kind", field("kind").value);
    params.set("scheduler", field("scheduler").value);
    if (field("test_dataset") && field("test_dataset").value) params.set("own_test_set", "true");
    var rate = values("learning_rate")[0];
    if (rate) params.set("learning_rate", rate);
    Object.keys(combo).forEach(function (name) { if (combo[name]) params.set(name, combo[name]); });
    return params;
  }

  function tick(v, index, ticks) {
    if (v === 0) return "0";
    var digits = 1, labels;
    do {
      labels = ticks.map(function (t) { return t.value.toExponential(digits); });
      digits++;
    } while (digits < 6 && new Set(labels).size < labels.length);
    return v.toExponential(digits - 1);
  }

  function draw(lines) {
    var datasets = lines.map(function (line, i) {
      return {
        label: line.label, data: line.points, borderColor: COLOURS[i % COLOURS.length],
        backgroundColor: COLOURS[i % COLOURS.length], borderWidth: 2, pointRadius: 0, stepped: false,
      };
    });
    chartBox.hidden = false; // shown before a chart is made in it, so that it takes the box's size
    if (!chart) {
      chart = new Chart(canvas, {
        type: "line",
        data: { datasets: datasets },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
          interaction: { mode: "nearest", axis: "x", intersect: false },
          plugins: { legend: { display: lines.length > 1 }, tooltip: { callbacks: {
            label: function (c) { return c.dataset.label + ": " + c.parsed.y.toExponential(3); },
          } } },
          scales: {
            x: { type: "linear", min: 1, title: { display: true, text: "step" }, ticks: { precision: 0 } },
            y: { beginAtZero: true, title: { display: true, text: "learning rate" }, ticks: { callback: tick } },
          },
        },
      });
    } else {
      chart.data.datasets = datasets;
      chart.options.plugins.legend.display = lines.length > 1;
      chart.update("none");
    }
    box.dataset.lines = String(lines.length);
  }

  function describe(plan) {
    var text = plan.train_rows.toLocaleString("en-US") + " training rows: " + plan.steps_per_epoch + " steps an epoch, " +
      plan.total_steps.toLocaleString("en-US") + " steps in all";
    return text + (plan.warmup_steps ? ", the first " + plan.warmup_steps + " warming up" : "");
  }

  function update() {
    var dataset = field("dataset");
    if (!dataset || !dataset.value) { clear(); say("Choose a dataset to see the learning rate of every step."); return; }
    var names = ["learning_rate"].concat(SWEPT);
    var wrong = names.filter(function (name) {
      var input = field(name);
      return input && input.getAttribute("aria-invalid") === "true";
    });
    if (wrong.length) { clear(); say("Fix " + wrong.join(", ") + " above to see the schedule."); return; }
    if (field("scheduler").value !== "linear" && values("warmup_ratio").some(function (v) { return Number(v) > 0; })) {
      clear(); // as mlcore.config refuses it at launch
      say("warmup_ratio needs scheduler 'linear'; the 'exponential' schedule has no warm-up", "errorlist small");
      return;
    }
    var rates = values("learning_rate").map(Number);
    var combos = combinations();
    var shown = combos.slice(0, MAX_FETCHES);
    var ticket = ++asked;
    var address = url.replace("/0/", "/" + encodeURIComponent(dataset.value) + "/");
    box.setAttribute("aria-busy", "true");
    Promise.all(shown.map(function (combo) {
      return fetch(address + "?" + query(combo).toString(), {
        credentials: "same-origin", headers: { Accept: "application/json" },
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body, combo: combo }; });
      });
    })).then(function (answers) {
      if (ticket !== asked) return; // a later question is on its way
      box.removeAttribute("aria-busy");
      var refused = answers.filter(function (a) { return !a.ok; })[0];
      if (refused) {
        clear();
        say([].concat.apply([], Object.keys(refused.body).map(function (k) { return [].concat(refused.body[k]); }))
          .join("; "), "errorlist small");
        return;
      }
      var lines = [], told = [];
      answers.forEach(function (answer) {
        var plan = answer.body;
        var base = plan.points.length && rates[0] ? rates[0] : null;
        var about = SWEPT.filter(function (n) { return values(n).length > 1; })
          .map(function (n) { return n + " " + answer.combo[n]; }).join(", ");
        (base ? rates : [null]).forEach(function (rate) {
          // The server drew the first learning rate; the others scale it (a schedule is a factor on the rate).
          var scale = base ? rate / base : 1;
          lines.push({
            label: (rate ? "lr " + rate.toExponential() : "lr") + (about ? " (" + about + ")" : ""),
            points: plan.points.map(function (p) { return { x: p[0], y: p[1] * scale }; }),
          });
        });
        told.push((about ? about + ": " : "") + describe(plan));
      });
      draw(lines);
      var more = combos.length > shown.length ? " The sweep's first " + shown.length + " of " + combos.length +
        " combinations are drawn." : "";
      say(told.join("; ") + "." + more);
      var first = answers[0].body;
      box.dataset.totalSteps = String(first.total_steps);
      box.dataset.warmupSteps = String(first.warmup_steps);
    }).catch(function () {
      if (ticket !== asked) return;
      box.removeAttribute("aria-busy");
      say("The schedule could not be fetched; launching still works.");
    });
  }

  function soon() {
    clearTimeout(typing);
    typing = setTimeout(update, 250);
  }
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  form.addEventListener("launch-form:filled", soon); // a recipe or a teacher's settings filled fields in
  box.hidden = false;
  update();
})();
