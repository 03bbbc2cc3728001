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

  // Pooling grid: hovering or focusing an output cell lights up the input cells it reads and
  // fills the gradient grid with d output / d input for that cell.
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
