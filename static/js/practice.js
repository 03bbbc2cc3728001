// Keyboard-driven practice, like a flashcard app. Everything also works with mouse and no JS.
(function () {
  "use strict";

  function typing(target) {
    return target && (target.tagName === "INPUT" && target.type !== "radio" || target.tagName === "TEXTAREA" || target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    const card = document.getElementById("practice-card");
    if (!card || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const reveal = card.querySelector("[data-reveal]");
    if (event.key === " " && reveal) {
      event.preventDefault();
      reveal.open = !reveal.open;
      return;
    }
    if (/^[1-6]$/.test(event.key)) {
      if (reveal && reveal.open) {
        const grade = reveal.querySelector('button[data-key="' + event.key + '"]');
        if (grade) { event.preventDefault(); grade.click(); }
        return;
      }
      const option = card.querySelector('input[type=radio][data-key="' + event.key + '"]');
      if (option) { event.preventDefault(); option.checked = true; option.focus(); }
      return;
    }
    if (event.key === "ArrowRight") {
      const next = card.querySelector("[data-next]");
      if (next) { event.preventDefault(); next.click(); }
      return;
    }
    if (event.key === "u") {
      const undo = card.querySelector("[data-undo]");
      if (undo) { event.preventDefault(); undo.requestSubmit(); }
    }
  });

  // A hint that was opened makes a correct answer count as "hard" for the scheduler.
  document.addEventListener("toggle", function (event) {
    const box = event.target;
    if (box.matches && box.matches("[data-hint]") && box.open) {
      const field = box.closest("form").querySelector("[data-hints-used]");
      if (field) field.value = "1";
    }
  }, true);

  // The mock interview's countdown.
  function tick(timer) {
    const left = Math.round((Date.parse(timer.dataset.deadline) - Date.now()) / 1000);
    if (left <= 0) { timer.textContent = "Time is up: hand in now."; timer.classList.add("form-error"); return; }
    const minutes = Math.floor(left / 60), seconds = left % 60;
    timer.textContent = "Time left: " + minutes + ":" + String(seconds).padStart(2, "0");
    setTimeout(function () { tick(timer); }, 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    const timer = document.querySelector("[data-deadline]");
    if (timer) tick(timer);
  });
})();
