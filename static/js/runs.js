// New-run form: after a live check has put the messages in place (out of band), mark each
// field's control invalid or valid for assistive technology. The form works without this.
(function () {
  "use strict";

  function markFields() {
    document.querySelectorAll("#run-form .run-field").forEach(function (field) {
      const message = field.querySelector(".field-error");
      const control = field.querySelector("input:not([type=hidden]), select");
      if (!message || !control) return;
      if (message.textContent.trim()) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    });
  }

  document.addEventListener("htmx:afterSettle", markFields);
})();
