// Charts: Chart.js draws the canvas of every <figure class="chart-box" data-chart='{...}'> from
// the JSON spec in that attribute (data, not script: the CSP stays script-src 'self', and htmx
// swaps it like any markup; the canvas's frame is kept across swaps, see the end).
// Each chart's numbers are also in a table next to it, which is what a page without
// JavaScript shows; once a chart is drawn its table folds away under "… as a table".
//
// The JSON spec (built by the server: app/runs/present.py, app/views/progress.py):
//   {type: "line", x: {title, min?, max?, log?, integer?}, y: {title, min?, max?, percent?, log?},
//    series: [{label, points: [[x, y], ...], thin?, dash?, scatter? (points only)}]}
//   {type: "bar", x: {title, labels}, y: {title, min?, max?, percent?}, horizontal?,
//    series: [{label, values: [...], line?}]}
//   {type: "matrix", x: {title, labels}, y: {title, labels},
//    cells: [[v, ...], ...] (rows follow y.labels) | points: [{x, y, v, title?}],
//    link?: "/path?true={row}&predicted={col}"}
(function () {
  "use strict";

  const PALETTE = ["#2f6fba", "#d9622b", "#2e8b57", "#8e5bd1", "#c23b3b", "#1b8a99",
    "#b08a12", "#c2477f", "#5f8f1f", "#66707c"];
  const openTables = new Set(); // tables a reader opened stay open across live refreshes
  const drawnBoxes = new WeakSet(); // figures drawn (a swap brings new ones)

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function colour(index, alpha) {
    const hex = PALETTE[index % PALETTE.length];
    if (alpha === undefined) return hex;
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function percentTicks(value) { return Math.round(value * 100) + " %"; }

  function scale(axis, extra) {
    const text = cssVar("--muted", "#666");
    const result = Object.assign({
      title: { display: Boolean(axis.title), text: axis.title, color: text },
      ticks: { color: text },
      grid: { color: cssVar("--line", "#ddd") },
    }, extra || {});
    if (axis.min !== undefined) result.min = axis.min;
    if (axis.max !== undefined) result.max = axis.max;
    if (axis.percent) result.ticks.callback = percentTicks;
    if (axis.integer) result.ticks.precision = 0; // whole steps: no tick at epoch 1.5
    return result;
  }

  function common() {
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { labels: { color: cssVar("--fg", "#222"), boxWidth: 14 } } },
    };
  }

  function lineConfig(spec) {
    const options = common();
    options.scales = {
      x: scale(spec.x, { type: spec.x.log ? "logarithmic" : "linear" }),
      y: scale(spec.y, { type: spec.y.log ? "logarithmic" : "linear" }),
    };
    options.plugins.legend.display = spec.series.length > 1;
    return {
      type: "line",
      data: {
        datasets: spec.series.map(function (s, i) {
          return {
            label: s.label,
            data: s.points.map(function (p) { return { x: p[0], y: p[1] }; }),
            borderColor: colour(i),
            backgroundColor: colour(i, 0.25),
            borderWidth: s.thin ? 1 : 2,
            pointRadius: s.thin ? 0 : (s.scatter ? 4 : 3),
            borderDash: s.dash ? [5, 5] : [],
            showLine: !s.scatter,
            spanGaps: true,
            parsing: false,
          };
        }),
      },
      options: options,
    };
  }

  function barConfig(spec) {
    const options = common();
    const valueAxis = spec.horizontal ? "x" : "y";
    const labelAxis = spec.horizontal ? "y" : "x";
    options.indexAxis = spec.horizontal ? "y" : "x";
    options.scales = {};
    options.scales[labelAxis] = scale(spec.horizontal ? spec.y : spec.x);
    options.scales[valueAxis] = scale(spec.horizontal ? spec.x : spec.y, { beginAtZero: true });
    options.plugins.legend.display = spec.series.length > 1;
    const labels = (spec.horizontal ? spec.y : spec.x).labels;
    return {
      type: "bar",
      data: {
        labels: labels,
        datasets: spec.series.map(function (s, i) {
          return {
            type: s.line ? "line" : "bar",
            label: s.label,
            data: s.values,
            borderColor: colour(i),
            backgroundColor: colour(i, s.line ? 0.25 : 0.7),
            spanGaps: true,
          };
        }),
      },
      options: options,
    };
  }

  function matrixPoints(spec) {
    if (spec.points) return spec.points;
    const points = [];
    spec.cells.forEach(function (row, r) {
      row.forEach(function (v, c) {
        points.push({ x: spec.x.labels[c], y: spec.y.labels[r], v: v, row: r, col: c });
      });
    });
    return points;
  }

  // Writes each cell's count in its middle (dense matrices only: a calendar has no room).
  const cellText = {
    id: "cvprepCellText",
    afterDatasetsDraw: function (chart) {
      if (!chart.$cvprepLabels) return;
      const ctx = chart.ctx;
      const meta = chart.getDatasetMeta(0);
      const points = chart.data.datasets[0].data;
      const max = chart.$cvprepMax;
      ctx.save();
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = "12px system-ui, sans-serif";
      meta.data.forEach(function (element, i) {
        const centre = element.getCenterPoint();
        ctx.fillStyle = points[i].v > max / 2 ? "#fff" : cssVar("--fg", "#222");
        ctx.fillText(String(points[i].v), centre.x, centre.y);
      });
      ctx.restore();
    },
  };

  function matrixConfig(spec) {
    const points = matrixPoints(spec);
    const max = Math.max(1, ...points.map(function (p) { return p.v; }));
    const columns = spec.x.labels.length;
    const rows = spec.y.labels.length;
    const options = common();
    options.plugins.legend.display = false;
    options.plugins.tooltip = {
      callbacks: {
        title: function () { return ""; },
        label: function (item) {
          const p = item.raw;
          return p.title || (spec.y.title + " " + p.y + ", " + spec.x.title + " " + p.x + ": " + p.v);
        },
      },
    };
    options.scales = {
      x: scale(spec.x, { type: "category", labels: spec.x.labels, offset: true, grid: { display: false } }),
      // The first row on top, as in a table.
      y: scale(spec.y, { type: "category", labels: spec.y.labels, offset: true, reverse: false, grid: { display: false } }),
    };
    if (spec.link) {
      options.onClick = function (event, elements, chart) {
        if (!elements.length) return;
        const p = chart.data.datasets[0].data[elements[0].index];
        openLink(spec.link.replace("{row}", p.row).replace("{col}", p.col));
      };
      options.onHover = function (event, elements) {
        event.native.target.style.cursor = elements.length ? "pointer" : "default";
      };
    }
    return {
      type: "matrix",
      data: {
        datasets: [{
          label: spec.title || "",
          data: points,
          backgroundColor: function (context) {
            const p = context.dataset.data[context.dataIndex];
            return p && p.v ? colour(0, 0.12 + 0.88 * p.v / max) : cssVar("--code-bg", "#f3f3f3");
          },
          borderColor: cssVar("--line", "#ddd"),
          borderWidth: 1,
          width: function (context) { const a = context.chart.chartArea; return a ? a.width / columns - 2 : 10; },
          height: function (context) { const a = context.chart.chartArea; return a ? a.height / rows - 2 : 10; },
        }],
      },
      options: options,
      plugins: [cellText],
    };
  }

  // A matrix cell opens the images behind it: in the page's panel through htmx, or as a page.
  function openLink(url) {
    const panel = document.getElementById("confusion-cell");
    if (panel && window.htmx) {
      window.htmx.ajax("GET", url, { target: panel, swap: "innerHTML" });
    } else {
      window.location.href = url;
    }
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest && event.target.closest(".chart-box a[href*='/confusion?']");
    if (!link || !document.getElementById("confusion-cell") || !window.htmx) return;
    event.preventDefault();
    openLink(link.getAttribute("href"));
  });

  function configFor(spec) {
    if (spec.type === "line") return lineConfig(spec);
    if (spec.type === "bar") return barConfig(spec);
    if (spec.type === "matrix") return matrixConfig(spec);
    return null;
  }

  // A reader's "… as a table" choice holds across live refreshes (the server sends it open,
  // which is what a page without JavaScript needs).
  function foldTable(box) {
    const table = box.querySelector("details.chart-table");
    if (!table || table.dataset.followed) return;
    table.open = openTables.has(box.id);
    table.dataset.followed = "true";
    table.addEventListener("toggle", function () {
      if (table.open) openTables.add(box.id); else openTables.delete(box.id);
    });
  }

  // Draw the chart of one figure (<figure class="chart-box" data-chart='…'>), or, when its
  // canvas already holds a chart of the same kind, put the new numbers into that chart: a
  // live page's polls keep their canvases (hx-preserve), so the chart is never blank between
  // two polls, and a series the reader hid in the legend stays hidden.
  function draw(box) {
    if (typeof window.Chart === "undefined" || drawnBoxes.has(box)) return;
    const canvas = box.querySelector("canvas");
    const frame = box.querySelector(".chart-frame");
    if (!canvas || !frame) return;
    const spec = JSON.parse(box.dataset.chart);
    const config = configFor(spec);
    if (!config) return;
    drawnBoxes.add(box);
    frame.classList.add("drawn"); // shown before Chart.js measures it: a hidden frame is 0×0
    let chart = window.Chart.getChart(canvas);
    const same = chart && chart.config.type === config.type;
    if (same) {
      const datasets = chart.data.datasets;
      config.data.datasets.forEach(function (dataset, i) {
        if (datasets[i]) Object.assign(datasets[i], dataset); // the same object keeps its legend state
        else datasets.push(dataset);
      });
      datasets.length = config.data.datasets.length;
      if (config.data.labels) chart.data.labels = config.data.labels;
      chart.options = config.options;
    } else {
      if (chart) chart.destroy();
      chart = new window.Chart(canvas, config);
    }
    if (spec.type === "matrix") {
      chart.$cvprepLabels = Boolean(spec.cells);
      chart.$cvprepMax = Math.max(1, ...matrixPoints(spec).map(function (p) { return p.v; }));
    }
    if (same || spec.type === "matrix") chart.update("none");
    foldTable(box);
  }

  function drawAll() {
    document.querySelectorAll(".chart-box[data-chart]").forEach(draw);
  }

  // New content is drawn in the same task that swapped it in (htmx:afterSwap), before the
  // browser paints. Each chart's frame is kept across a swap (hx-preserve, by its id), canvas
  // and chart included, and only its numbers change: nothing is removed, so no frame is
  // painted without the chart. htmx's settle step, later, restores the attributes the
  // swapped-in figures arrived with; the frames are not among them (preserved elements are
  // not settled), so the chart stays shown.
  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSwap", drawAll);
  document.addEventListener("htmx:load", drawAll);
})();
