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

  // A field whose default depends on another (weight decay on the optimiser): when that other
  // field changes and this one still holds the old choice's default, show the new default.
  // Without this script an untouched value is sent as typed; an empty one takes the default.
  function followDefaults(event) {
    const changed = event.target;
    if (!changed.name) return;
    document.querySelectorAll('#run-form [data-default-of="' + changed.name + '"]').forEach(function (input) {
      const defaults = JSON.parse(input.dataset.defaults);
      const previous = changed.dataset.previous;
      const shown = Number(input.value);
      if (input.value === "" || (previous in defaults && shown === defaults[previous])) {
        if (changed.value in defaults) input.value = String(defaults[changed.value]);
      }
    });
    changed.dataset.previous = changed.value;
  }
  document.querySelectorAll("#run-form select").forEach(function (select) {
    select.dataset.previous = select.value;
  });
  document.addEventListener("change", followDefaults);
})();
