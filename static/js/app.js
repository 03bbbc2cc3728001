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

  function enhance(root) {
    addCopyButtons(root);
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    // A history restore swaps the whole body and names no target.
    const target = event.detail.target || event.target;
    if (!target || !target.querySelectorAll) return;
    enhance(target);
    const focusTarget = target.querySelector("[data-focus-on-swap]");
    if (focusTarget) focusTarget.focus();
  });
})();
