// Compare page, "Try a text": one text classified by every compared model through the API, side by side.
// Labels and texts reach the page through textContent only.
(function () {
  "use strict";

  var form = document.getElementById("try-form");
  if (!form) return;
  var results = document.getElementById("try-results");
  var error = document.getElementById("try-error");

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function render(answers) {
    var body = results.querySelector("tbody");
    body.replaceChildren();
    answers.forEach(function (a) {
      var row = document.createElement("tr");
      row.setAttribute("data-model-id", String(a.id));
      row.appendChild(cell(a.name));
      var label = cell(a.label);
      if (a.truncated) label.appendChild(document.createTextNode(" (text cut)"));
      if (a.certainty && a.certainty.note) {
        // A near tie reads as one: "coin flip" / "uncertain" beside the label, the sentence on hover.
        var flag = document.createElement("span");
        flag.className = "chip chip-warning";
        flag.setAttribute("data-certainty", a.certainty.level);
        flag.title = a.certainty.note;
        flag.textContent = a.certainty.level === "coin_flip" ? "coin flip" : "uncertain";
        label.appendChild(document.createTextNode(" "));
        label.appendChild(flag);
      }
      row.appendChild(label);
      row.appendChild(cell((a.probability * 100).toFixed(1) + "%", "num"));
      row.appendChild(cell(Object.keys(a.probabilities).map(function (k) {
        return k + " " + (a.probabilities[k] * 100).toFixed(1) + "%";
      }).join(" · "), "small"));
      row.appendChild(cell(a.latency_ms.toFixed(1) + " ms (" + a.serving_precision + ")", "num nowrap"));
      body.appendChild(row);
    });
    results.hidden = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    button.disabled = true;
    error.hidden = true;
    fetch("/api/models/compare/classify/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token },
      body: JSON.stringify({ ids: form.getAttribute("data-ids"), text: form.elements.text.value }),
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.detail || JSON.stringify(body));
        return body;
      });
    }).then(function (body) {
      render(body.answers);
    }).catch(function (e) {
      error.textContent = "Could not classify: " + e.message;
      error.hidden = false;
    }).then(function () {
      button.disabled = false;
    });
  });
})();
