// Demo widgets: progressive enhancements for the demo forms. Every demo works without this file.
(function () {
  "use strict";

  // A 422 from a demo carries the inline error message as its fragment: show it (htmx 2 does
  // not swap 4xx responses by default).
  document.addEventListener("htmx:beforeSwap", function (event) {
    const detail = event.detail;
    if (detail.xhr && detail.xhr.status === 422 && detail.elt && detail.elt.closest(".demo")) {
      detail.shouldSwap = true;
      detail.isError = false;
    }
  });

  // --- marking the field an error is about ------------------------------------------------

  // The forms whose results land in `result` (the settings form and the upload form).
  function formsFor(result) {
    if (!result.id) return [];
    return Array.prototype.filter.call(document.querySelectorAll("form[hx-target]"), function (form) {
      return form.getAttribute("hx-target") === "#" + result.id;
    });
  }

  function control(form, name) {
    return form.querySelector('[name="' + name + '"]:not([type="hidden"])');
  }

  function describedBy(element) {
    return (element.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  }

  function clearMarks(form) {
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (element) {
      element.removeAttribute("aria-invalid");
      const kept = describedBy(element).filter(function (id) { return !/demo-error$|-error$/.test(id); });
      if (kept.length) element.setAttribute("aria-describedby", kept.join(" "));
      else element.removeAttribute("aria-describedby");
      const field = element.closest(".field");
      if (field) field.classList.remove("invalid");
    });
  }

  function mark(form, name, messageId) {
    const element = control(form, name);
    if (!element) return;
    element.setAttribute("aria-invalid", "true");
    const ids = describedBy(element);
    if (ids.indexOf(messageId) < 0) ids.unshift(messageId);
    element.setAttribute("aria-describedby", ids.join(" "));
    const field = element.closest(".field");
    if (field) field.classList.add("invalid");
  }

  // After every swap into a demo result: the field named by the error (if any) is marked, and
  // the marks of an earlier error are cleared.
  document.addEventListener("htmx:afterSwap", function (event) {
    const result = event.detail.target;
    if (!result || !result.classList || !result.classList.contains("demo-result")) return;
    const error = result.querySelector(".demo-error[data-field]");
    formsFor(result).forEach(function (form) {
      clearMarks(form);
      if (error) mark(form, error.dataset.field, error.id);
    });
  });

  // The browser's own checks (min, max, step, a number field holding letters) stop htmx from
  // sending the form; say why, in the same place and words a server error would use.
  document.addEventListener("htmx:validation:halted", function (event) {
    const form = event.detail.elt;
    const errors = event.detail.errors || [];
    if (!form || !errors.length || !form.closest(".demo")) return;
    const result = document.querySelector(form.getAttribute("hx-target"));
    if (!result) return;
    const element = errors[0].elt;
    const label = element.labels && element.labels.length ? element.labels[0].textContent.trim() : element.name;
    const message = document.createElement("p");
    message.className = "demo-error";
    message.setAttribute("role", "alert");
    message.id = result.id + "-check";
    message.dataset.field = element.name;
    const strong = document.createElement("strong");
    strong.textContent = label;
    message.append(strong, ": " + element.validationMessage);
    result.replaceChildren(message);
    formsFor(result).forEach(function (other) { clearMarks(other); });
    mark(form, element.name, message.id);
  });

  // --- the one-layer form shows only the fields its layer kind uses ---------------------------

  function showFieldsFor(form, kind) {
    form.querySelectorAll("[data-kinds]").forEach(function (field) {
      const used = field.dataset.kinds.split(" ").indexOf(kind) >= 0;
      field.hidden = !used;
      field.querySelectorAll("input, select, textarea").forEach(function (input) { input.disabled = !used; });
    });
  }

  // Capture phase: runs before htmx sends the form on the same change, so the fields of the
  // previous kind are already disabled (and not sent).
  document.addEventListener("change", function (event) {
    const select = event.target;
    if (select.name === "kind" && select.form && select.form.querySelector("[data-kinds]")) {
      showFieldsFor(select.form, select.value);
    }
  }, true);

  // --- an uploaded photo stays while the other settings change -----------------------------

  // The upload form carries copies of the settings for browsers without this script; with it,
  // the settings form itself is included, as edited, so the copies must not be sent.
  function disableSettingsCopies(root) {
    root.querySelectorAll("form[data-upload-form] [data-settings-copy]").forEach(function (copy) {
      copy.disabled = true;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { disableSettingsCopies(document); });
  document.addEventListener("htmx:load", function (event) {
    if (event.target && event.target.querySelectorAll) disableSettingsCopies(event.target);
  });

  function uploadFormAfter(form) {
    const next = form.nextElementSibling;
    return next && next.matches("form[data-upload-form]") ? next : null;
  }

  function chosenFile(uploadForm) {
    const input = uploadForm && uploadForm.querySelector('input[type="file"]');
    return input && input.files && input.files.length ? input.files[0] : null;
  }

  // The photo picker names the chosen file, so it never claims a sample photo is shown.
  function showUploadInPicker(form, name) {
    const picker = form.querySelector("[data-photo-picker]");
    if (!picker) return;
    let option = picker.querySelector("[data-upload-option]");
    if (!option) {
      option = document.createElement("option");
      option.value = "upload";
      option.dataset.uploadOption = "";
      picker.prepend(option);
    }
    option.textContent = "Your photo: " + name;
    option.selected = true;
  }

  function forgetUpload(form, uploadForm) {
    const option = form.querySelector("[data-photo-picker] [data-upload-option]");
    if (option) option.remove();
    const input = uploadForm && uploadForm.querySelector('input[type="file"]');
    if (input) input.value = "";
  }

  document.addEventListener("change", function (event) {
    const input = event.target;
    const uploadForm = input.type === "file" && input.closest("form[data-upload-form]");
    if (!uploadForm) return;
    const form = uploadForm.previousElementSibling;
    if (form && input.files && input.files.length) showUploadInPicker(form, input.files[0].name);
  });

  // A change of the settings form while a file is chosen: send the upload form instead (it
  // includes the settings), so the photo is used again rather than replaced by a sample.
  // Choosing a sample photo in the picker lets the file go.
  document.addEventListener("htmx:confirm", function (event) {
    const form = event.detail.elt;
    if (!(form instanceof HTMLFormElement)) return;
    const uploadForm = uploadFormAfter(form);
    if (!uploadForm || !chosenFile(uploadForm)) return;
    const trigger = event.detail.triggeringEvent && event.detail.triggeringEvent.target;
    if (trigger && trigger.matches && trigger.matches("[data-photo-picker]") && trigger.value !== "upload") {
      forgetUpload(form, uploadForm);
      return;
    }
    event.preventDefault();
    htmx.trigger(uploadForm, "submit");
  });

  // --- the pooling grid --------------------------------------------------------------------

  // Hovering or focusing an output cell lights up the input cells it reads and fills the
  // gradient grid with d output / d input for that cell.
  function trace(cell) {
    const method = cell.closest(".pool-method");
    if (!method) return;
    const reads = new Set((cell.dataset.reads || "").split(" "));
    method.querySelectorAll(".input-grid td[data-cell]").forEach(function (input) {
      input.classList.toggle("read", reads.has(input.dataset.cell));
    });
    const rows = (cell.dataset.grad || "").split(";").map(function (row) { return row.split(" "); });
    method.querySelectorAll(".grad-grid td[data-cell]").forEach(function (target) {
      const parts = target.dataset.cell.split(",");
      const value = (rows[Number(parts[0])] || [])[Number(parts[1])];
      if (value === undefined) return;
      const number = Number(value);
      target.textContent = String(Number(number.toPrecision(6)));
      target.classList.toggle("nonzero", number !== 0);
    });
    method.querySelectorAll(".output-grid td.traced").forEach(function (other) {
      other.classList.remove("traced");
    });
    cell.classList.add("traced");
    const label = method.querySelector(".traced-cell");
    if (label) label.textContent = cell.dataset.out;
  }

  function onPointer(event) {
    const cell = event.target.closest && event.target.closest(".output-grid td[data-reads]");
    if (cell) trace(cell);
  }
  document.addEventListener("mouseover", onPointer);
  document.addEventListener("focusin", onPointer);
})();
