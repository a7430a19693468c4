// Dashboard: the queue card. Its move buttons post to POST /api/jobs/{id}/move/ without leaving the page, and
// each table is redrawn from the queue events of /ws/jobs/ (jobs_live.js passes them on as distillery:job-queue),
// so a move made on another page, or a job of anyone's starting, shows here too.
(function () {
  "use strict";

  var card = document.getElementById("queue");
  if (!card) return;
  var status = document.getElementById("queue-status");
  var csrf = card.getAttribute("data-csrf");
  var MOVES = [["top", "Move to top", " to top"], ["up", "Up", " up"], ["down", "Down", " down"]];

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  // A row as templates/includes/queue.html draws it.
  function newRow(item) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-job-id", String(item.job));
    tr.appendChild(cell("", "queue-position"));
    var link = document.createElement("a");
    link.href = "/jobs/" + item.job + "/";
    link.textContent = "#" + item.job;
    var jobCell = cell("");
    jobCell.appendChild(link);
    tr.appendChild(jobCell);
    tr.appendChild(cell(item.kind, "queue-kind"));
    tr.appendChild(cell("", "num queue-priority"));
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/jobs/" + item.job + "/move/";
    form.className = "queue-move";
    var token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrf;
    form.appendChild(token);
    MOVES.forEach(function (move) {
      var button = document.createElement("button");
      button.type = "submit";
      button.name = "to";
      button.value = move[0];
      button.className = "btn btn-secondary btn-sm";
      button.setAttribute("aria-label", "Move job #" + item.job + move[2]);
      button.textContent = move[1];
      form.appendChild(button);
      form.appendChild(document.createTextNode(" "));
    });
    var moveCell = cell("");
    moveCell.appendChild(form);
    tr.appendChild(moveCell);
    return tr;
  }

  function redraw(queue, jobs) {
    var table = document.getElementById("queue-" + queue);
    if (!table) return;
    var body = table.tBodies[0];
    var rows = {};
    Array.prototype.forEach.call(body.querySelectorAll("tr[data-job-id]"), function (tr) {
      rows[tr.getAttribute("data-job-id")] = tr;
    });
    while (body.firstChild) body.removeChild(body.firstChild);
    jobs.forEach(function (item) {
      var tr = rows[String(item.job)] || newRow(item);
      tr.querySelector(".queue-position").textContent = String(item.position);
      tr.querySelector(".queue-priority").textContent = String(item.priority);
      body.appendChild(tr);
    });
    if (!jobs.length) {
      var empty = document.createElement("tr");
      empty.className = "empty-row";
      var td = cell("Nothing queued.", "empty");
      td.colSpan = 5;
      empty.appendChild(td);
      body.appendChild(empty);
    }
  }

  document.addEventListener("distillery:job-queue", function (event) {
    redraw(event.detail.queue, event.detail.jobs || []);
  });

  card.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList.contains("queue-move") || !event.submitter) return;
    event.preventDefault();
    var job = form.closest("tr").getAttribute("data-job-id");
    fetch("/api/jobs/" + job + "/move/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ to: event.submitter.value }),
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        // The websocket brings the same places; the answer draws them at once should it be down.
        if (answer.ok) redraw(answer.body.queue, answer.body.jobs);
        status.textContent = answer.ok ? "" : answer.body.detail || "Could not move the job.";
      })
      .catch(function () { status.textContent = "Could not reach the server; try again."; });
  });
})();
