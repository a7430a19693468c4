// Long submits say so: in a form with data-busy="Importing…", the button that sent it is disabled (a second click
// would send the file again) and shows that text until the next page arrives. A page restored from the back/forward
// cache gets its buttons back.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.hasAttribute || !form.hasAttribute("data-busy")) return;
    var button = event.submitter || form.querySelector("button[type=submit]");
    if (!button) return;
    button.setAttribute("data-idle-text", button.textContent);
    button.textContent = form.getAttribute("data-busy");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
  });

  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-busy] [data-idle-text]").forEach(function (button) {
      button.textContent = button.getAttribute("data-idle-text");
      button.removeAttribute("data-idle-text");
      button.disabled = false;
      button.form.removeAttribute("aria-busy");
    });
  });
})();
