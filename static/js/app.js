// cvprep: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  function draftStore(key) {
    const storageKey = "cvprep:draft:" + key;
    return {
      load: function () { try { return localStorage.getItem(storageKey) || ""; } catch (e) { return ""; } },
      save: function (text) { try { localStorage.setItem(storageKey, text); return true; } catch (e) { return false; } },
    };
  }

  function enhanceDraft(root) {
    root.querySelectorAll("textarea[data-draft-key]").forEach(function (box) {
      if (box.dataset.enhanced) return;
      box.dataset.enhanced = "1";
      const store = draftStore(box.dataset.draftKey);
      const status = document.getElementById(box.getAttribute("aria-describedby"));
      if (!box.value) box.value = store.load();
      let timer = null;
      box.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          if (store.save(box.value) && status) status.textContent = "Draft saved on this device.";
        }, 300);
      });
    });
  }

  function showDraftBesideAnswer(root) {
    const box = document.querySelector("textarea[data-draft-key]");
    const compare = root.querySelector(".compare");
    if (!box || !compare) return;
    const text = box.value.trim();
    if (text) {
      compare.querySelector(".draft-copy").textContent = text;
      compare.hidden = false;
    }
  }

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

  function enhance(root) {
    enhanceDraft(root);
    showDraftBesideAnswer(root);
    addCopyButtons(root);
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    enhance(event.detail.target);
    const focusTarget = event.detail.target.querySelector("[data-focus-on-swap]");
    if (focusTarget) focusTarget.focus();
  });
})();
