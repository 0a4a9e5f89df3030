// Draws every <figure class="chart"> from the JSON it carries, with the vendored uPlot.
(function () {
  const colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  function draw(figure) {
    if (figure.dataset.drawn) return;
    const data = JSON.parse(figure.querySelector("script[type='application/json']").textContent);
    const labels = Object.keys(data.series);
    const series = [{ label: "step" }].concat(labels.map((label, i) => ({
      label: label, stroke: colors[i % colors.length], width: 2, spanGaps: true, points: { show: data.x.length < 60 },
    })));
    const columns = [data.x].concat(labels.map((label) => data.series[label]));
    new uPlot({ width: 460, height: 240, series: series, scales: { x: { time: false } } }, columns, figure);
    figure.dataset.drawn = "1";
  }
  function drawAll(root) { root.querySelectorAll("figure.chart").forEach(draw); }
  document.addEventListener("DOMContentLoaded", () => drawAll(document));
  document.addEventListener("htmx:afterSwap", (event) => drawAll(event.target));
})();
