// The dataset page's preview while it is being made (#dataset-preview[data-pending]): its part of the page is
// fetched again every second until the server has it (a 202 means not yet), then put in place.
(function () {
  "use strict";
  var RETRY_MS = 1000;

  function poll() {
    var part = document.getElementById("dataset-preview");
    if (!part || !part.hasAttribute("data-pending")) return;
    fetch(part.getAttribute("data-url"), { credentials: "same-origin" })
      .then(function (response) {
        return response.text().then(function (html) {
          if (response.status === 202) window.setTimeout(poll, RETRY_MS);
          else part.outerHTML = html; // the preview, or what went wrong
        });
      })
      .catch(function () { window.setTimeout(poll, 3 * RETRY_MS); });
  }

  window.setTimeout(poll, RETRY_MS);
})();
