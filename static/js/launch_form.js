// The dashboard's launch form: the fields of the chosen job kind, recipes, each number checked as it is typed
// (with the bounds and words the server uses: the inputs' data- attributes come from mlcore.config), and for a
// distillation the teacher's max_length, truncation and batch size, and what the student will be.
(function () {
  "use strict";
  var form = document.getElementById("job-form");
  if (!form) return;
  var kind = form.querySelector('[name="kind"]');
  function field(name) {
    return form.querySelector('[name="' + name + '"]');
  }

  // Show the fields that belong to the chosen job kind only; a field with an error stays visible.
  function syncKind() {
    form.querySelectorAll("[data-show-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-show-for") !== kind.value && !el.querySelector(".errorlist") &&
        !el.classList.contains("has-error");
    });
  }
  kind.addEventListener("change", syncKind);
  syncKind();

  // ---- Inline checks, as jobs.forms.ValuesField and mlcore.config.Range check on the server ----

  // Python's repr of a float (what the server's message shows): shortest digits, exponent form outside
  // 1e-4 <= |x| < 1e16, "e-05" with two exponent digits, ".0" on a whole number.
  function pyFloat(x) {
    if (Number.isNaN(x)) return "nan";
    if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
    if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
    var parts = x.toExponential().split("e");
    var exp = Number(parts[1]);
    if (exp < -4 || exp >= 16) {
      var mantissa = parts[0];
      return mantissa + "e" + (exp < 0 ? "-" : "+") + String(Math.abs(exp)).padStart(2, "0");
    }
    var text = String(x); // JS writes fixed notation over this whole range too, with the same shortest digits
    return text.indexOf(".") === -1 ? text + ".0" : text;
  }
  function pyStr(text) {
    return text.indexOf("'") !== -1 && text.indexOf('"') === -1 ? '"' + text + '"' : "'" + text + "'";
  }
  var INT = /^[+-]?\d+(_\d+)*$/;
  var FLOAT = /^[+-]?((\d+(_\d+)*)?\.?\d+(_\d+)*|\d+(_\d+)*\.)([eE][+-]?\d+(_\d+)*)?$/;
  var SPECIAL = /^[+-]?(inf|infinity|nan)$/i;

  function problem(input) {
    var data = input.dataset;
    var items = input.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    if (!items.length) return input.required ? "This field is required." : "";
    if (data.single && items.length > 1) return data.param + " takes one value, not several";
    var seen = [];
    for (var i = 0; i < items.length; i++) {
      var item = items[i], number;
      if (data.kind === "int") {
        if (!INT.test(item)) return pyStr(item) + " is not a whole number";
        number = Number(item.replace(/_/g, ""));
      } else {
        if (!FLOAT.test(item) && !SPECIAL.test(item)) return pyStr(item) + " is not a number";
        number = SPECIAL.test(item) ? Number(item.replace(/inf(inity)?/i, "Infinity").replace(/nan/i, "NaN"))
          : Number(item.replace(/_/g, ""));
      }
      if (data.requirement !== undefined) {
        var low = Number(data.low), high = data.high === undefined ? Infinity : Number(data.high);
        var above = data.lowOpen ? number > low : number >= low;
        var below = data.highOpen ? number < high : number <= high;
        if (!(above && below && Number.isFinite(number))) {
          return data.requirement + ", got " + (data.kind === "int" ? String(number) : pyFloat(number));
        }
      }
      if (seen.indexOf(number) !== -1) return item + " is given twice";
      seen.push(number);
    }
    return "";
  }

  function show(input) {
    var holder = input.closest(".field");
    var message = problem(input);
    var list = holder.querySelector(".errorlist.client");
    if (!list) {
      list = document.createElement("ul");
      list.className = "errorlist client";
      list.id = input.id + "-problem";
      holder.appendChild(list);
    }
    list.textContent = "";
    if (message) {
      var item = document.createElement("li");
      item.textContent = message;
      list.appendChild(item);
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", list.id);
    } else {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
    // The server's message for this field is about the value it was sent; once the value changes it is stale.
    var served = holder.querySelector(".errorlist:not(.client)");
    if (served && input.dataset.sent !== undefined && input.value !== input.dataset.sent) served.hidden = true;
    holder.classList.toggle("has-error", Boolean(message) || Boolean(served && !served.hidden));
    return message;
  }

  var checked = Array.prototype.slice.call(form.querySelectorAll("input[data-kind]"));
  checked.forEach(function (input) {
    input.dataset.sent = input.value;
    input.addEventListener("input", function () { show(input); });
  });
  form.addEventListener("submit", function (event) {
    // A field the chosen kind hides is not sent as a parameter (the server ignores distillation fields of a
    // fine-tune), so only the visible ones can stop the launch.
    var wrong = checked.filter(function (input) {
      return !input.closest("[hidden]") && show(input);
    });
    if (wrong.length) {
      event.preventDefault();
      var details = wrong[0].closest("details");
      if (details) details.open = true;
      wrong[0].focus();
    }
  });

  // ---- Recipes: a recipe fills the fields in (its values for the chosen kind) ----
  var recipeSelect = document.getElementById("recipe-select");
  if (recipeSelect) {
    var recipes = JSON.parse(document.getElementById("job-recipes").textContent);
    var summaries = JSON.parse(document.getElementById("recipe-summaries").textContent);
    var summary = document.getElementById("recipe-summary");
    document.getElementById("recipe-field").hidden = false;
    var fill = function () {
      var chosen = recipes[recipeSelect.value];
      if (!chosen) return;
      var values = chosen[kind.value] || chosen.finetune;
      Object.keys(values).forEach(function (name) {
        var input = field(name);
        if (!input) return;
        if (input.type === "checkbox") input.checked = Boolean(values[name]);
        else input.value = values[name] === null ? "" : String(values[name]);
        if (input.dataset.kind) show(input);
      });
      summary.textContent = summaries[recipeSelect.value];
      form.dispatchEvent(new Event("launch-form:filled"));
    };
    recipeSelect.addEventListener("change", fill);
    kind.addEventListener("change", fill);
  }

  // ---- Distillation: the teacher's settings, and the student it gives ----
  var plan = document.getElementById("student-plan");
  var teacher = field("teacher"), layers = field("student_layers");
  if (!plan || !teacher || !layers) return;
  var url = plan.dataset.url;
  var asked = 0;
  // The teacher last answered about, {id, layers}: first the one the page was rendered with
  var known = plan.dataset.teacher ? { id: plan.dataset.teacher, layers: Number(plan.dataset.layers) } : null;

  function size(bytes) { // as Django's filesizeformat writes it
    var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0;
    if (bytes < 1024) return bytes + "\u00a0bytes";
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return bytes.toFixed(1) + "\u00a0" + units[i];
  }
  function count(n) { return n.toLocaleString("en-US"); }
  function say(parts) {
    plan.textContent = "";
    parts.forEach(function (part) {
      var node = document.createElement(part[0]);
      node.textContent = part[1];
      if (part[2]) node.setAttribute("data-plan", part[2]);
      plan.appendChild(node);
    });
  }

  function no(message) {
    say([["span", "No student: " + message]]);
    plan.firstChild.className = "errorlist";
  }

  function update(inherit) {
    var id = teacher.value;
    if (!id) {
      say([["span", "Choose a teacher to see what the student will be."]]);
      plan.firstChild.className = "muted";
      return;
    }
    var k = layers.value.trim();
    // A sweep over layer counts, a typo or 0: the inline check points at it
    if (k && (!/^\d+$/.test(k) || Number(k) < 1)) return;
    if (k && known && known.id === id && Number(k) > known.layers) {
      // As mlcore.students.layers_to_keep refuses it (the API's 400, which a browser logs as an error)
      no("a derived student can keep 1 to " + known.layers + " of the teacher's layers, not " + Number(k));
      return;
    }
    var ticket = ++asked;
    var address = url.replace("/0/", "/" + encodeURIComponent(id) + "/") + (k ? "?student_layers=" + k : "");
    fetch(address, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (ticket !== asked) return; // a later question is on its way
        if (!answer.ok) {
          no([].concat.apply([], Object.keys(answer.body).map(function (key) {
            return [].concat(answer.body[key]);
          })).join("; "));
          return;
        }
        var t = answer.body.teacher, s = answer.body.student;
        known = { id: id, layers: t.layers };
        if (inherit) {
          Object.keys(answer.body.inherit).forEach(function (name) {
            var input = field(name);
            if (!input) return;
            input.value = String(answer.body.inherit[name]);
            if (input.dataset.kind) show(input);
          });
          form.dispatchEvent(new Event("launch-form:filled"));
        }
        say([
          ["strong", "The student:"], ["span", " "], ["span", String(s.layers), "layers"],
          ["span", " of the teacher's " + t.layers + " layers (its layers " + s.kept.join(", ") + "), hidden size " +
            s.hidden_size + ", "],
          ["span", count(s.parameters), "parameters"],
          ["span", " parameters (the teacher: " + count(t.parameters) + "); about "],
          ["span", size(s.size_fp32), "size_fp32"], ["span", " at fp32, "],
          ["span", size(s.size_int8), "size_int8"], ["span", " at int8."],
        ]);
      })
      .catch(function () {
        if (ticket === asked) say([["span", "The student's size could not be fetched; launching still works."]]);
      });
  }

  teacher.addEventListener("change", function () { update(true); });
  var typing = null;
  layers.addEventListener("input", function () {
    clearTimeout(typing);
    typing = setTimeout(function () { update(false); }, 250);
  });
  kind.addEventListener("change", function () {
    // Choosing "distil" with a teacher already selected takes its settings, as choosing the teacher does.
    if (kind.value === "distill" && teacher.value) update(true);
  });
})();
