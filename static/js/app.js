// cvprep: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  function addCopyButtons(root) {
    if (!navigator.clipboard) return;
    root.querySelectorAll(".prose pre.code").forEach(function (pre) {
      if (pre.querySelector(".copy-button")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy this code");
      button.addEventListener("click", function () {
        const code = pre.querySelector("code");
        navigator.clipboard.writeText(code ? code.innerText : pre.innerText).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 1500);
        });
      });
      pre.appendChild(button);
    });
  }

  // <time datetime="…Z" data-local="datetime|time">… UTC</time>: shown in the reader's own
  // time zone; the UTC text stays as the tooltip (and is what a page without JS shows).
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (element) {
      if (element.dataset.localised) return;
      const when = new Date(element.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      const options = element.dataset.local === "time"
        ? { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" }
        : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
      element.title = element.textContent;
      element.textContent = when.toLocaleString(undefined, options);
      element.dataset.localised = "true";
    });
  }

  // A link to a section of the full answer (#anchor) opens the <details> that holds it.
  function openTargetDetails() {
    if (!location.hash) return;
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    const details = target && target.closest("details");
    if (details && !details.open) {
      details.open = true;
      target.scrollIntoView();
    }
  }
  window.addEventListener("hashchange", openTargetDetails);

  function enhance(root) {
    openTargetDetails();
    addCopyButtons(root);
    localTimes(root);
  }

  // After an htmx swap, move focus to what the new content marks (the verdict after an
  // answer, the model answer after a reveal) so a screen reader announces it. An outerHTML
  // swap replaces the target itself: find the new element by its id.
  function swappedRoot(target) {
    if (target.isConnected) return target;
    return (target.id && document.getElementById(target.id)) || document.body;
  }

  function focusMarked(root) {
    const marked = root.matches && root.matches("[data-focus-on-swap]")
      ? root : root.querySelector("[data-focus-on-swap]");
    if (marked) marked.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    enhance(document);
    // A practice page loaded in full (no htmx) focuses its feedback or field the same way.
    const card = document.getElementById("practice-card");
    if (card) focusMarked(card);
  });
  // Content swapped in with outerHTML replaces the target itself: enhance the new element.
  document.addEventListener("htmx:load", function (event) { enhance(event.detail.elt); });
  document.addEventListener("htmx:afterSwap", function (event) {
    // A history restore swaps the whole body and names no target.
    const target = event.detail.target || event.target;
    if (!target || !target.querySelectorAll) return;
    const root = swappedRoot(target);
    enhance(root);
    focusMarked(root);
  });

  // --- a new session key: a visitor's first saved action makes them a guest with a fresh
  // key, and the response hands over the CSRF token that goes with it (X-CSRF-Token). The
  // htmx header and every form on the page take it, so the page's next request is accepted.
  function renewCsrf(token) {
    if (!token || !/^[0-9a-f]{20,64}$/.test(token)) return;
    document.body.setAttribute("hx-headers", JSON.stringify({ "X-CSRF-Token": token }));
    document.querySelectorAll("input[name=csrf_token]").forEach(function (input) {
      input.value = token;
    });
  }
  document.addEventListener("htmx:afterRequest", function (event) {
    const xhr = event.detail.xhr;
    if (xhr) renewCsrf(xhr.getResponseHeader("X-CSRF-Token"));
  });

  // --- delete: a link to a confirmation page marked [data-confirm-dialog] shows that page's
  // question (what depends on it, "Delete it", "Keep it") in a modal <dialog> instead of
  // leaving the page. Focus goes to "Keep it" (the choice that loses nothing); Escape or
  // "Keep it" closes it and gives the focus back to the link; "Delete it" posts the page's
  // own form. Without this script, or if the page cannot be fetched, the link leads there.
  let dialogOpener = null;

  function confirmDialog() {
    let dialog = document.getElementById("confirm-dialog");
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.id = "confirm-dialog";
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-dialog-heading");
    dialog.addEventListener("click", function (event) {
      if (event.target.closest(".confirm-keep")) {
        event.preventDefault();
        dialog.close();
      }
    });
    dialog.addEventListener("close", function () {
      if (dialogOpener && dialogOpener.isConnected) dialogOpener.focus();
      dialogOpener = null;
    });
    document.body.appendChild(dialog);
    return dialog;
  }

  function openConfirm(link) {
    fetch(link.href, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error(String(response.status));
      return response.text();
    }).then(function (html) {
      const body = new DOMParser().parseFromString(html, "text/html").querySelector(".confirm-body");
      if (!body) throw new Error("no confirmation");
      const heading = body.querySelector("h1");
      if (heading) {  // the dialog's title, a level below the page's own heading
        const title = document.createElement("h2");
        title.id = "confirm-dialog-heading";
        title.textContent = heading.textContent;
        heading.replaceWith(title);
      }
      const dialog = confirmDialog();
      if (dialog.open) return;  // a second click while the first was on its way
      dialog.replaceChildren(document.importNode(body, true));
      dialogOpener = link;
      dialog.showModal();
      const keep = dialog.querySelector(".confirm-keep");
      if (keep) keep.focus();
    }).catch(function () { location.assign(link.href); });
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest && event.target.closest("a[data-confirm-dialog]");
    if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    if (typeof HTMLDialogElement !== "function") return;
    event.preventDefault();
    openConfirm(link);
  });

  // --- drafts: saved on the debounce (htmx), before a reveal, and when the page is left ----

  function draftParts() {
    const form = document.querySelector("form[data-draft]");
    const field = form && form.querySelector("textarea[name=draft]");
    return form && field ? { form: form, field: field } : null;
  }

  function unsaved(parts) {
    return parts.field.value !== (parts.form.dataset.saved || "");
  }

  // Save now with fetch; resolves once the server has it (or failed: the reveal goes on).
  function saveDraft(parts) {
    if (!unsaved(parts)) return Promise.resolve();
    const value = parts.field.value;
    return fetch(parts.form.action, {
      method: "POST",
      body: new FormData(parts.form), // carries the CSRF token as a form field
      headers: { "HX-Request": "true" },
      credentials: "same-origin",
    }).then(function (response) {
      renewCsrf(response.headers.get("X-CSRF-Token"));
      if (!response.ok) return;
      parts.form.dataset.saved = value;
      return response.text().then(function (html) {
        const status = document.getElementById("draft-status");
        if (status) { status.outerHTML = html; enhance(parts.form); }
      });
    }).catch(function () {});
  }

  // Leaving the page: a beacon survives the unload. It cannot send the CSRF header, so the
  // token travels in the form body, where the server checks it just the same.
  function beaconDraft() {
    const parts = draftParts();
    if (!parts || !unsaved(parts) || !navigator.sendBeacon) return;
    if (navigator.sendBeacon(parts.form.action, new FormData(parts.form))) {
      parts.form.dataset.saved = parts.field.value;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const parts = draftParts();
    if (parts) parts.form.dataset.saved = parts.field.value;
  });
  // What the debounced htmx save sent is what the server now has.
  document.addEventListener("htmx:configRequest", function (event) {
    const parts = draftParts();
    if (parts && event.detail.elt === parts.form) parts.form.dataset.sending = parts.field.value;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    const parts = draftParts();
    if (parts && event.detail.elt === parts.form && event.detail.successful) {
      parts.form.dataset.saved = parts.form.dataset.sending || "";
    }
  });
  // Reveal the model answer only once the draft typed so far is saved, so it shows beside it.
  document.addEventListener("htmx:confirm", function (event) {
    const parts = draftParts();
    if (!parts || !event.detail.elt.matches("[data-reveal-answer]") || !unsaved(parts)) return;
    event.preventDefault();
    saveDraft(parts).then(function () { event.detail.issueRequest(true); });
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") beaconDraft();
  });
  window.addEventListener("pagehide", beaconDraft);
})();
