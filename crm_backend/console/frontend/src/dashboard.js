// The console's dashboard: draws each chart from the table the server put in
// the page (a <script type="application/json"> block next to the chart, the
// same rows as the HTML table and the CSV). Nothing is fetched; the page works
// without this script, as tables.

import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  DoughnutController,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";

Chart.register(
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  DoughnutController,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);

// Colours: the console's green first, then hues that stay apart for common
// colour-vision deficiencies; grey for "everything else".
const PALETTE = ["#0f5c4d", "#2f7ebc", "#e69f00", "#c4457a", "#7b5ea7", "#4fb39a", "#d55e00"];
const REST = "#b4bec8";
const MUTED = "#5d6b79";
const GRID = "#e9edf1";
const LIGHT_BARS = "#d5dde5";
const TIER_COLOURS = { gold: "#c9a227", silver: "#98a4b0", bronze: "#a86a3d", "not scored": "#e3e8ed" };
const TOP_NEEDS = 7; // the rest are stacked as one

const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
Chart.defaults.font.size = 12;
Chart.defaults.color = MUTED;
Chart.defaults.borderColor = GRID;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.animation = reducedMotion ? false : { duration: 400 };
Chart.defaults.plugins.legend.labels.boxWidth = 12;
Chart.defaults.plugins.legend.labels.boxHeight = 12;
Chart.defaults.plugins.tooltip.backgroundColor = "#1c2733";
Chart.defaults.plugins.tooltip.padding = 10;

const currency = document.body.dataset.currency || "GBP";
const money = new Intl.NumberFormat("en-GB", { style: "currency", currency, maximumFractionDigits: 0 });
const whole = new Intl.NumberFormat("en-GB");
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// The period's last day: a week that ends after it is not over yet.
const until = document.body.dataset.until || "9999-12-31";

function weekLabel(iso) {
  const [year, month, day] = iso.split("-").map(Number);
  const sunday = new Date(Date.UTC(year, month - 1, day + 6)).toISOString().slice(0, 10);
  const name = `${day} ${MONTHS[month - 1]}${month === 1 && day <= 7 ? ` ${year}` : ""}`;
  return sunday > until ? `${name} (so far)` : name;
}
function label(value) {
  const text = String(value ?? "").replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
const percent = (share) => (share == null ? "–" : `${Math.round(share * 1000) / 10}%`);
const minutes = (seconds) => (seconds == null ? null : Math.round((seconds / 60) * 10) / 10);
function duration(mins) {
  if (mins == null) return "–";
  if (mins < 1) return `${Math.round(mins * 60)} s`;
  if (mins < 60) return `${Math.round(mins * 10) / 10} min`;
  return `${Math.floor(mins / 60)} h ${Math.round(mins % 60)} min`;
}

const percentAxis = (extra = {}) => ({
  min: 0,
  max: 1,
  ticks: { callback: (value) => `${Math.round(value * 100)}%`, stepSize: 0.25 },
  ...extra,
});
const countAxis = (title, extra = {}) => ({
  beginAtZero: true,
  ticks: { precision: 0 },
  title: { display: true, text: title },
  ...extra,
});

// A share (a line, left axis) over the counts it is made of (light bars, right axis).
function shareOverCounts(data, { share, count, shareLabel, countLabel, colour }) {
  const rows = data.rows;
  return {
    type: "bar",
    data: {
      labels: rows.map((row) => weekLabel(row.week)),
      datasets: [
        {
          type: "line",
          label: shareLabel,
          data: rows.map((row) => row[share]),
          yAxisID: "share",
          borderColor: colour,
          backgroundColor: colour,
          borderWidth: 2.5,
          pointRadius: 3,
          tension: 0.3,
          spanGaps: true,
          order: 0,
        },
        {
          type: "bar",
          label: countLabel,
          data: rows.map((row) => row[count]),
          yAxisID: "count",
          backgroundColor: LIGHT_BARS,
          borderRadius: 3,
          order: 1,
        },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { grid: { display: false } },
        share: { ...percentAxis(), position: "left" },
        // Headroom above the bars keeps them under the line they explain.
        count: countAxis(countLabel, { position: "right", grid: { display: false }, grace: "60%" }),
      },
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            label: (item) =>
              item.dataset.yAxisID === "share"
                ? `${item.dataset.label}: ${percent(item.raw)}`
                : `${item.dataset.label}: ${whole.format(item.raw)}`,
          },
        },
      },
    },
  };
}

function needsTrend(data) {
  const weeks = [...new Set(data.rows.map((row) => row.week))];
  const totals = new Map();
  for (const row of data.rows) totals.set(row.category, (totals.get(row.category) || 0) + row.tickets);
  const ranked = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a));
  const shown = ranked.length > TOP_NEEDS + 1 ? ranked.slice(0, TOP_NEEDS) : ranked;
  const count = (week, pick) =>
    data.rows.filter((row) => row.week === week && pick(row.category)).reduce((sum, row) => sum + row.tickets, 0);
  const datasets = shown.map((category, index) => ({
    label: label(category),
    data: weeks.map((week) => count(week, (c) => c === category)),
    backgroundColor: PALETTE[index % PALETTE.length],
  }));
  if (shown.length < ranked.length) {
    datasets.push({
      label: `${ranked.length - shown.length} other needs`,
      data: weeks.map((week) => count(week, (c) => !shown.includes(c))),
      backgroundColor: REST,
    });
  }
  return {
    type: "bar",
    data: { labels: weeks.map(weekLabel), datasets },
    options: {
      interaction: { mode: "index", intersect: false },
      datasets: { bar: { borderRadius: 2, maxBarThickness: 48 } },
      scales: { x: { stacked: true, grid: { display: false } }, y: { ...countAxis("Tickets"), stacked: true } },
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          itemSort: (a, b) => b.raw - a.raw,
          filter: (item) => item.raw > 0,
          footer: (items) => `Total: ${whole.format(items.reduce((sum, item) => sum + item.raw, 0))}`,
        },
      },
    },
  };
}

// Writes each bar's value at its end (horizontal bars), so the figures read
// without hovering.
const barValues = {
  id: "barValues",
  afterDatasetsDraw(chart, _args, options) {
    const { ctx } = chart;
    const meta = chart.getDatasetMeta(0);
    ctx.save();
    ctx.font = `600 11.5px ${Chart.defaults.font.family}`;
    ctx.fillStyle = "#3d4a57";
    ctx.textBaseline = "middle";
    meta.data.forEach((bar, index) => {
      const text = options.format(chart.data.datasets[0].data[index], index);
      if (text) ctx.fillText(text, bar.x + 6, bar.y);
    });
    ctx.restore();
  },
};

function horizontalBars(labels, values, { colour, axis, tooltip, valueLabel }) {
  return {
    type: "bar",
    data: { labels, datasets: [{ data: values, backgroundColor: colour, borderRadius: 3, maxBarThickness: 22 }] },
    plugins: [barValues],
    options: {
      indexAxis: "y",
      layout: { padding: { right: 80 } },
      scales: { x: axis, y: { grid: { display: false } } },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: tooltip } },
        barValues: { format: valueLabel },
      },
    },
  };
}

function needs(data) {
  const rows = data.rows;
  return horizontalBars(
    rows.map((row) => label(row.category)),
    rows.map((row) => row.tickets),
    {
      colour: PALETTE[1],
      axis: countAxis("Tickets"),
      tooltip: (item) => `${whole.format(item.raw)} tickets (${percent(rows[item.dataIndex].share)})`,
      valueLabel: (value) => whole.format(value),
    },
  );
}

function csatBars(data) {
  const key = data.columns[0];
  const rows = data.rows;
  return horizontalBars(
    rows.map((row) => label(row[key])),
    rows.map((row) => row.csat),
    {
      colour: PALETTE[0],
      axis: percentAxis({ title: { display: true, text: "Scores of 4 or 5" } }),
      tooltip: (item) => `CSAT ${percent(item.raw)} of ${whole.format(rows[item.dataIndex].responses)} scores`,
      valueLabel: (value, index) => (value == null ? "" : `${Math.round(value * 100)}% (${whole.format(rows[index].responses)})`),
    },
  );
}

// Legends of doughnuts go beside them when there is room, else underneath.
const legendSide = (width) => (width < 560 ? "bottom" : "right");

function mix(data, canvas) {
  const key = data.columns[0];
  const rows = data.rows;
  const colours = rows.map((row, index) => TIER_COLOURS[row[key]] || PALETTE[index % PALETTE.length]);
  return {
    type: "doughnut",
    data: {
      labels: rows.map((row) => label(row[key])),
      datasets: [{ data: rows.map((row) => row.customers), backgroundColor: colours, borderColor: "#fff", borderWidth: 2 }],
    },
    options: {
      cutout: "62%",
      onResize: (chart, size) => {
        chart.options.plugins.legend.position = legendSide(size.width);
      },
      plugins: {
        legend: {
          position: legendSide(canvas.parentElement.clientWidth),
          labels: {
            padding: 14,
            generateLabels: (chart) =>
              Chart.overrides.doughnut.plugins.legend.labels.generateLabels(chart).map((item) => ({
                ...item,
                text: `${item.text}: ${whole.format(rows[item.index].customers)} (${percent(rows[item.index].share)})`,
              })),
          },
        },
        tooltip: {
          callbacks: {
            label: (item) => {
              const row = rows[item.dataIndex];
              return `${whole.format(row.customers)} customers (${percent(row.share)}), ${money.format(row.lifetime_value)}`;
            },
          },
        },
      },
    },
  };
}

function timeLines(data, kind) {
  const rows = data.rows;
  const colour = kind === "wait" ? PALETTE[2] : PALETTE[1];
  const line = (stat, dashed) => ({
    label: stat === "p50" ? "Median (p50)" : "90th percentile (p90)",
    data: rows.map((row) => minutes(row[`${kind}_${stat}_seconds`])),
    borderColor: colour,
    backgroundColor: colour,
    borderDash: dashed ? [6, 4] : [],
    borderWidth: 2.5,
    pointRadius: 3,
    tension: 0.3,
    spanGaps: true,
  });
  return {
    type: "line",
    data: { labels: rows.map((row) => weekLabel(row.week)), datasets: [line("p50", false), line("p90", true)] },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { x: { grid: { display: false } }, y: countAxis("Minutes", { ticks: {} }) },
      plugins: {
        legend: { position: "bottom", labels: { usePointStyle: true, pointStyle: "line", boxWidth: 28 } },
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${duration(item.raw)}` } },
      },
    },
  };
}

const CHARTS = {
  "needs-trend": needsTrend,
  needs,
  "csat-trend": (data) =>
    shareOverCounts(data, {
      share: "csat",
      count: "responses",
      shareLabel: "CSAT",
      countLabel: "Scores",
      colour: PALETTE[0],
    }),
  containment: (data) =>
    shareOverCounts(data, {
      share: "containment_rate",
      count: "conversations",
      shareLabel: "Contained",
      countLabel: "Conversations",
      colour: PALETTE[1],
    }),
  "handoff-wait": (data) => timeLines(data, "wait"),
  "handoff-handle": (data) => timeLines(data, "handle"),
  "csat-bars": csatBars,
  mix,
};

function draw(canvas) {
  const build = CHARTS[canvas.dataset.chart];
  const source = document.getElementById(canvas.dataset.source);
  if (!build || !source) return;
  const chart = new Chart(canvas, build(JSON.parse(source.textContent), canvas));
  canvas.dataset.drawn = "true";
  return chart;
}

document.querySelectorAll("canvas[data-chart]").forEach(draw);
document.body.dataset.chartsReady = "true";
