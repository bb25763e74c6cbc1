// Draws the overview's charts with Chart.js from the numbers the page embeds (the same
// numbers its tables show). Nothing here fetches anything.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  Chart.defaults.animation = false;
  Chart.defaults.color = "#1b1f24";
  Chart.defaults.font.family = "system-ui, sans-serif";

  var series = document.getElementById("series-chart");
  if (series) {
    new Chart(series, {
      data: {
        labels: data.labels,
        datasets: [
          {
            type: "bar",
            label: "Items",
            data: data.counts,
            backgroundColor: "#6d9fd1",
            yAxisID: "count",
          },
          {
            type: "line",
            label: "Average rating",
            data: data.averages,
            borderColor: "#b35900",
            backgroundColor: "#b35900",
            spanGaps: true,
            yAxisID: "rating",
          },
        ],
      },
      options: {
        maintainAspectRatio: false,
        scales: {
          count: { position: "left", beginAtZero: true, title: { display: true, text: "Items" } },
          rating: {
            position: "right",
            grid: { drawOnChartArea: false },
            title: { display: true, text: "Average rating" },
          },
        },
      },
    });
    // The chart now shows the numbers: fold their table away (it opens with a click).
    var numbers = document.getElementById("series-numbers");
    if (numbers) {
      numbers.open = false;
    }
  }

  var distribution = document.getElementById("distribution-chart");
  if (distribution) {
    new Chart(distribution, {
      type: "bar",
      data: {
        labels: data.distribution.labels,
        datasets: [{ label: "Ratings", data: data.distribution.counts, backgroundColor: "#6d9fd1" }],
      },
      options: {
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }
})();
