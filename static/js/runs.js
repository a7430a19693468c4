// Runs page. The server sorts, filters and pages (the query string is the view); this script shows and hides
// columns at once (remembered in localStorage, and written into the URL and every link so that a view can be
// shared), helps write a condition, and counts the runs ticked for Compare.
(function () {
  "use strict";

  var STORE = "distillery.runs.columns";
  var table = document.getElementById("runs-table");
  var chooser = document.getElementById("columns-form");
  if (!table || !chooser) return;

  function each(selector, fn, root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(selector), fn);
  }

  function boxes() {
    return Array.prototype.slice.call(chooser.querySelectorAll('input[name="columns"]'));
  }

  function stored() {
    try {
      return window.localStorage.getItem(STORE);
    } catch (e) {
      return null; // storage refused (a private window): the URL still carries the choice
    }
  }

  function store(value) {
    try {
      if (value === null) window.localStorage.removeItem(STORE);
      else window.localStorage.setItem(STORE, value);
    } catch (e) {
      // as above
    }
  }

  function withColumns(href, value) {
    var url = new URL(href, window.location.href);
    url.searchParams.set("columns", value);
    return url.pathname + url.search + url.hash;
  }

  // Every link and GET form of the page keeps the choice: headings, pages, CSV, Clear, filters, page size.
  function carry(value) {
    each("a.sort-link, .pager a, #runs-csv, #runs-clear", function (a) {
      a.setAttribute("href", withColumns(a.getAttribute("href"), value));
    });
    each("#runs-filter-form, .pager .per-page", function (form) {
      each('input[type="hidden"][name="columns"]', function (input) { input.remove(); }, form);
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "columns";
      input.value = value;
      form.appendChild(input);
    });
    window.history.replaceState(null, "", withColumns(window.location.href, value));
  }

  function show(keys) {
    var wanted = {};
    keys.forEach(function (key) { wanted[key] = true; });
    boxes().forEach(function (box) { box.checked = !!wanted[box.value]; });
    each("[data-col]", function (cell) { cell.hidden = !wanted[cell.getAttribute("data-col")]; }, table);
    carry(keys.join(","));
  }

  function known(value) {
    var names = boxes().map(function (box) { return box.value; });
    return (value || "").split(",").filter(function (key) { return names.indexOf(key) >= 0; });
  }

  boxes().forEach(function (box) {
    box.addEventListener("change", function () {
      var keys = boxes().filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
      if (!keys.length) { box.checked = true; return; } // a table needs a column
      show(keys);
      store(keys.join(","));
    });
  });
  document.getElementById("columns-apply").hidden = true; // changes apply as they are made
  var defaults = document.getElementById("columns-defaults");
  defaults.hidden = false;
  defaults.addEventListener("click", function () {
    show(known(chooser.getAttribute("data-defaults")));
    store(null);
  });

  // A link without ?columns= shows the columns this browser chose last.
  if (!new URL(window.location.href).searchParams.has("columns")) {
    var remembered = known(stored());
    if (remembered.length) show(remembered);
  }

  var details = document.getElementById("column-chooser");
  document.addEventListener("click", function (event) {
    if (details.open && !details.contains(event.target)) details.open = false;
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && details.open) details.open = false;
  });

  // The condition builder appends "column op value" to the Where box.
  var builder = document.getElementById("condition-builder");
  var where = document.getElementById("id_where");
  var column = document.getElementById("condition-column");
  var op = document.getElementById("condition-op");
  var value = document.getElementById("condition-value");
  if (builder && where) {
    builder.hidden = false;
    var syncOps = function () {
      var numeric = column.options[column.selectedIndex].getAttribute("data-numeric") === "1";
      Array.prototype.forEach.call(op.options, function (option) {
        option.disabled = !numeric && option.value !== "=" && option.value !== "!=";
      });
      if (op.options[op.selectedIndex].disabled) op.value = "=";
    };
    column.addEventListener("change", syncOps);
    syncOps();
    document.getElementById("condition-add").addEventListener("click", function () {
      var text = value.value.trim();
      if (!text) { value.focus(); return; }
      var condition = column.value + " " + op.value + " " + text;
      where.value = where.value.trim() ? where.value.trim() + ", " + condition : condition;
      value.value = "";
      where.focus();
    });
  }

  // A page size applies as it is chosen.
  var perPage = document.getElementById("per-page");
  if (perPage) {
    document.getElementById("per-page-apply").hidden = true;
    perPage.addEventListener("change", function () { perPage.form.submit(); });
  }

  // Compare: the ticked runs' models, at most the form's data-max.
  var compare = document.getElementById("compare-form");
  var button = document.getElementById("compare-ticked");
  var max = parseInt(compare.getAttribute("data-max"), 10);
  function countTicked() {
    var ticks = Array.prototype.slice.call(compare.querySelectorAll('input[name="models"]'));
    var ticked = ticks.filter(function (t) { return t.checked; }).length;
    ticks.forEach(function (t) { t.disabled = !t.checked && ticked >= max; });
    button.disabled = ticked === 0;
    button.textContent = ticked ? "Compare ticked (" + ticked + ")" : "Compare ticked";
  }
  compare.addEventListener("change", countTicked);
  countTicked();
})();
