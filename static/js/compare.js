// Compare page: smoothing (an exponential moving average, TensorBoard's rule, with the raw
// curve kept faint behind it) and a log scale for the loss axis. Acts on the charts that
// charts.js drew; without JavaScript the tables of the same numbers stand.
(function () {
  "use strict";

  const CHARTS = ["compare-accuracy-chart", "compare-loss-chart"];
  const RAW = " (raw)";

  // TensorBoard's smoothing: last = last * w + (1 - w) * y, debiased by 1 - w^n.
  function smooth(points, weight) {
    let last = 0;
    let n = 0;
    return points.map(function (p) {
      if (p.y === null || p.y === undefined || !isFinite(p.y)) return { x: p.x, y: p.y };
      n += 1;
      last = last * weight + (1 - weight) * p.y;
      const debias = weight > 0 ? 1 - Math.pow(weight, n) : 1;
      return { x: p.x, y: last / debias };
    });
  }

  function faint(colour) {
    const hex = /^#([0-9a-f]{6})$/i.exec(colour || "");
    if (!hex) return colour;
    const v = parseInt(hex[1], 16);
    return "rgba(" + (v >> 16) + "," + ((v >> 8) & 255) + "," + (v & 255) + ",0.3)";
  }

  function chartOf(id) {
    const canvas = document.getElementById(id);
    return canvas && window.Chart ? window.Chart.getChart(canvas) : null;
  }

  function apply() {
    const weight = Number(document.getElementById("smoothing").value) || 0;
    document.getElementById("smoothing-value").textContent = weight.toFixed(2);
    const log = document.getElementById("loss-log").checked;
    CHARTS.forEach(function (id) {
      const chart = chartOf(id);
      if (!chart) return;
      if (!chart.$cvprepRaw) {
        chart.$cvprepRaw = chart.data.datasets.map(function (d) {
          return { label: d.label, data: d.data.slice(), colour: d.borderColor };
        });
      }
      const sets = [];
      chart.$cvprepRaw.forEach(function (raw, i) {
        const main = chart.data.datasets.find(function (d) { return d.label === raw.label; });
        main.data = weight > 0 ? smooth(raw.data, weight) : raw.data.slice();
        sets.push(main);
        if (weight > 0) {
          sets.push({
            label: raw.label + RAW, data: raw.data.slice(), parsing: false, spanGaps: true,
            borderColor: faint(raw.colour), backgroundColor: faint(raw.colour),
            borderWidth: 1, pointRadius: 0, order: 10 + i,
          });
        }
      });
      chart.data.datasets = sets;
      chart.options.plugins.legend.labels.filter = function (item) {
        return !item.text.endsWith(RAW);
      };
      if (id === "compare-loss-chart") {
        const y = chart.options.scales.y;
        if (chart.$cvprepMin === undefined) chart.$cvprepMin = y.min;
        y.type = log ? "logarithmic" : "linear";
        y.min = log ? undefined : chart.$cvprepMin; // a log axis cannot start at 0
      }
      chart.update();
    });
  }

  function start() {
    const controls = document.getElementById("compare-controls");
    if (!controls || !window.Chart) return;
    controls.hidden = false;
    controls.addEventListener("input", apply);
    controls.addEventListener("change", apply);
    controls.addEventListener("submit", function (event) { event.preventDefault(); });
  }
  // After charts.js has drawn (its DOMContentLoaded listener was added first).
  document.addEventListener("DOMContentLoaded", start);
})();
