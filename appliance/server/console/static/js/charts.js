// Draws every <canvas data-chart='{"type", "labels", "datasets", "stacked", "horizontal", "percent"}'>
// with the vendored Chart.js. The data comes from the page (HTML-escaped JSON in an attribute), so no
// inline script is needed and the CSP can forbid them.
"use strict";

(function () {
  const palette = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
                   "#9333ea", "#ea580c", "#0d9488", "#4b5563"];
  function draw(canvas) {
    let spec;
    try {
      spec = JSON.parse(canvas.dataset.chart);
    } catch (e) {
      canvas.replaceWith(document.createTextNode("chart data unreadable"));
      return;
    }
    const datasets = spec.datasets.map((d, i) => ({
      label: d.label,
      data: d.data,
      backgroundColor: palette[i % palette.length],
      borderColor: palette[i % palette.length],
    }));
    const horizontal = !!spec.horizontal;
    const valueAxis = { beginAtZero: true, stacked: !!spec.stacked,
                        ticks: spec.percent ? { callback: (v) => v + "%" } : {} };
    const labelAxis = { stacked: !!spec.stacked };
    canvas.chart = new Chart(canvas, {
      type: spec.type || "bar",
      data: { labels: spec.labels, datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
        plugins: { legend: { display: datasets.length > 1 } },
      },
    });
    canvas.dataset.drawn = "true";
  }
  function start() {
    if (typeof Chart === "undefined") return;
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
