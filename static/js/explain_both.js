// Explain both (the disagreement page): one row's text explained by each of the two models side by side, through
// POST /api/models/{id}/explain/ (the explain path classify uses), each for the label it predicted.
(function () {
  "use strict";
  var card = document.getElementById("explain-both");
  if (!card) return;
  var token = document.querySelector("input[name=csrfmiddlewaretoken]").value;

  function explain(model, text, label) {
    var payload = {text: text};
    if (label) payload.label = label;
    return fetch("/api/models/" + model + "/explain/", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify(payload)
    }).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) throw new Error(body.detail || JSON.stringify(body)); return body; });
    });
  }

  function fill(box, text) {
    var model = box.getAttribute("data-model");
    box.textContent = "Explaining…";
    delete box.dataset.explained;
    return explain(model, text, null).then(function (data) {
      window.renderExplanation(box, data, {explain: function (label) { return explain(model, text, label); }});
      box.dataset.explained = data.label;
    }).catch(function (e) {
      box.textContent = "Could not explain: " + e.message;
    });
  }

  document.querySelectorAll("button.explain-both").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-text");
      var buttons = document.querySelectorAll("button.explain-both");
      buttons.forEach(function (b) { b.disabled = true; });
      card.hidden = false;
      document.getElementById("explain-row").textContent = "row " + button.getAttribute("data-row");
      Promise.all([fill(document.getElementById("explain-a"), text), fill(document.getElementById("explain-b"), text)])
        .finally(function () {
          buttons.forEach(function (b) { b.disabled = false; });
          card.scrollIntoView({block: "start"});
        });
    });
  });
})();
