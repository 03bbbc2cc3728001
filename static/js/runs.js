// New-run form: after a live check has put the messages in place (out of band), mark each
// field's control invalid or valid for assistive technology; open "More settings" when a
// message is inside it; and, on submit, put the form's values in the address so that Back
// from the run's page finds the form as it was sent (form=1: an unticked box stays unticked).
// The form works without this. On a run's page, focus is kept when the run ends (see below).
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
    const more = document.getElementById("more-settings");
    if (more && more.querySelector(".field-error:not(:empty)")) more.open = true;
  }

  function keepInAddress(event) {
    const form = event.target;
    if (!form || form.id !== "run-form") return;
    const params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrf_token" && typeof value === "string") params.append(name, value);
    });
    history.replaceState(history.state, "", "/runs/new?" + params.toString());
  }

  // A link to a field (the list of messages) opens the folded settings around it.
  function openTarget(event) {
    const link = event.target.closest && event.target.closest("#run-form-errors a[href^='#field-']");
    if (!link) return;
    const field = document.querySelector(link.getAttribute("href"));
    const details = field && field.closest("details");
    if (details) details.open = true;
  }

  // Run page: the poll that finds the run ended swaps in a status without the Cancel button.
  // If that button had the focus, give it to the status line (not to <body>).
  let lostFocus = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    const target = event.detail.target;
    const active = document.activeElement;
    lostFocus = target && target.id === "run-status" && active && active !== document.body
      && target.contains(active) ? active.id : null;
  });
  function keepFocus() {
    if (!lostFocus) return;
    const again = document.getElementById(lostFocus);
    if (!again && (document.activeElement === document.body || !document.activeElement)) {
      const state = document.getElementById("run-state");
      if (state) state.focus();
    }
    lostFocus = null;
  }

  document.addEventListener("htmx:afterSettle", keepFocus);
  document.addEventListener("htmx:afterSettle", markFields);
  document.addEventListener("submit", keepInAddress);
  document.addEventListener("click", openTarget);

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
