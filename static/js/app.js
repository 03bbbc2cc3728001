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
  // Content swapped in with outerHTML replaces the target itself: enhance the new element.
  document.addEventListener("htmx:load", function (event) { enhance(event.detail.elt); });
  document.addEventListener("htmx:afterSwap", function (event) {
    enhance(event.detail.target);
    const focusTarget = event.detail.target.querySelector("[data-focus-on-swap]");
    if (focusTarget) focusTarget.focus();
  });
})();
