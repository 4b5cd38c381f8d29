// Progressive enhancement of the server-rendered pages: charts (Plotly, served locally)
// from the page's JSON API, and a live refresh every data-refresh seconds that redraws
// the charts and swaps the page's data-live sections with freshly rendered ones.
(function () {
  "use strict";
  const body = document.body;
  const page = body.dataset.page;
  const api = body.dataset.api;
  const refreshMs = Math.max(1, Number(body.dataset.refresh || 5)) * 1000;
  const live = body.dataset.liveRefresh === "true";
  const status = document.getElementById("live-status");

  // times go to Plotly as UTC wall-clock strings: every chart shows UTC, like the tables
  const toDate = (ms) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");
  const layout = (title, extra) => Object.assign({
    title: { text: title, font: { size: 14 } },
    margin: { l: 60, r: 30, t: 40, b: 40 },
    height: 280,
    legend: { orientation: "h", y: -0.25 },
    paper_bgcolor: "rgba(0,0,0,0)",
    xaxis: { automargin: true },
  }, extra || {});
  // an axis of counts or amounts: never below zero, tick labels never clipped
  const countAxis = (title, extra) => Object.assign({ title: { text: title }, rangemode: "nonnegative", automargin: true }, extra || {});
  // the right-hand axis of a dual-axis chart: same rules, drawn over the left one
  // (ticks of its own, not synced to the left axis' grid: those gave labels like 3.391)
  const rightAxis = (title, values, extra) => countAxis(title, Object.assign({
    overlaying: "y", side: "right", showgrid: false, tickmode: "auto", rangemode: "tozero",
  }, values.some((v) => v > 0) ? {} : { range: [0, 1], autorange: false }, extra || {}));
  // a note in the middle of an empty chart, saying why it is empty
  const emptyNote = (text) => ({ annotations: [{ text, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
    font: { color: "#6b7385", size: 13 } }] });

  function draw(id, traces, extra) {
    const el = document.getElementById(id);
    if (!el || !window.Plotly) return;
    const points = traces.reduce((n, t) => n + ((t.x || t.z || []).length), 0);
    let full = layout(el.dataset.title || "", extra);
    if (points === 0) {
      // nothing to draw: no made-up axes (Plotly would show -1 … 6 and 0 … 400 %), a note instead
      const hidden = { visible: false };
      full = Object.assign(full, { xaxis: hidden, yaxis: hidden, yaxis2: hidden, shapes: [] },
        full.annotations ? {} : emptyNote("no data in this range"));
    }
    window.Plotly.react(el, traces, full, { displaylogo: false, displayModeBar: false, responsive: true });
    // the number of points drawn, for readers and for the browser test
    el.dataset.points = String(points);
    el.classList.toggle("no-data", points === 0);
  }

  const renderers = {
    overview(d) {
      // long ranges come in buckets of several minutes (d.bucket_minutes): plot per-minute averages
      const s = d.series, x = s.map((r) => toDate(r.minute)), perMin = (v) => v / (d.bucket_minutes || 1);
      const money = d.currency || "";
      const alertsPerMin = s.map((r) => perMin(r.alerts));
      draw("chart-volume", [
        { x, y: s.map((r) => perMin(r.transactions)), name: "transactions / min", type: "scatter", mode: "lines+markers" },
        { x, y: alertsPerMin, name: "alerts / min", type: "scatter", mode: "lines+markers", yaxis: "y2" },
      ], { yaxis: countAxis("transactions / min"), yaxis2: rightAxis("alerts / min", alertsPerMin) });
      draw("chart-amounts", [
        { x, y: s.map((r) => perMin(r.amount_normal_minor) / 100), name: "normal", type: "bar",
          hovertemplate: "%{y:,.2f} " + money + "<extra>normal</extra>" },
        { x, y: s.map((r) => perMin(r.amount_flagged_minor) / 100), name: "flagged", type: "bar",
          hovertemplate: "%{y:,.2f} " + money + "<extra>flagged</extra>" },
      ], { barmode: "stack", yaxis: countAxis(money + " / min", { tickformat: ",.0f" }) });
      draw("chart-shares", [
        { x, y: s.map((r) => (r.transactions ? r.flagged_transactions / r.transactions : null)), name: "flagged share", type: "scatter", mode: "lines" },
        { x, y: s.map((r) => (r.transactions ? r.failed_transactions / r.transactions : null)), name: "failed share", type: "scatter", mode: "lines" },
      ], { yaxis: countAxis("share of transactions", { tickformat: ".1%" }) });
      // the maximum is a shaded band under the average, so the average is never hidden when they are equal;
      // a minute without alerts has no freshness (not 0 ms)
      const anyAlert = s.some((r) => r.alerts > 0);
      draw("chart-latency", [
        { x, y: s.map((r) => (r.alerts ? r.latency_ms_max : null)), name: "max", type: "scatter", mode: "lines", fill: "tozeroy",
          line: { color: "rgba(214, 39, 40, 0.5)", width: 1 }, fillcolor: "rgba(214, 39, 40, 0.12)" },
        { x, y: s.map((r) => r.latency_ms_avg), name: "avg", type: "scatter", mode: "lines+markers",
          line: { color: "#1f4fbf", width: 3 }, marker: { size: 5 } },
      ], Object.assign({ yaxis: countAxis("ms") }, anyAlert || !s.length ? {} : emptyNote("no alerts in this range")));
      draw("chart-late", [
        { x, y: s.map((r) => perMin(r.late_records)), name: "late", type: "bar" },
        { x, y: s.map((r) => perMin(r.dlq_records)), name: "DLQ", type: "bar" },
      ], { yaxis: countAxis("records / min") });
    },
    alerts(d) {
      const a = d.alerts;
      draw("chart-scores", [{
        x: a.map((r) => toDate(r.window_start)), y: a.map((r) => r.score), text: a.map((r) => r.sender_account),
        name: "score", type: "scatter", mode: "markers", marker: { size: 8 },
      }]);
    },
    sender(d) {
      const w = d.windows, t = d.transactions;
      draw("chart-windows", [
        { x: w.map((r) => toDate(r.window_start)), y: w.map((r) => r.tx_count), name: "transactions", type: "bar" },
        { x: w.filter((r) => r.flagged).map((r) => toDate(r.window_start)), y: w.filter((r) => r.flagged).map((r) => r.score),
          name: "alert score", type: "scatter", mode: "markers", marker: { size: 10, symbol: "x" }, yaxis: "y2" },
      ], { yaxis: countAxis("transactions"), yaxis2: rightAxis("alert score", w.filter((r) => r.flagged).map((r) => r.score)) });
      draw("chart-transactions", [{
        x: t.map((r) => toDate(r.event_time)), y: t.map((r) => r.amount_minor / 100), text: t.map((r) => r.status),
        name: "amount", type: "scatter", mode: "markers",
      }], { yaxis: countAxis("amount" + (t.length ? " (" + t[0].currency + ")" : "")) });
    },
    model(d) {
      const m = d.models[0];
      if (!m || !m.centroids.length) { draw("chart-centroids", [], emptyNote("no model version yet")); return; }
      // one row per centroid, in the stored order (normal, tail, fraud); the y axis names the
      // groups at their middles and lines separate them, so 176 rows stay readable
      const groups = m.groups.length ? m.groups : [{ name: "cluster", first: 0, clusters: m.centroids.length }];
      // older versions' groups (normal, fraud) are not runs of indexes: their rows are named by index
      const ordered = groups.every((g, n) => n === 0 || g.first === groups[n - 1].first + groups[n - 1].clusters);
      const label = (f) => f.replace(/_minor$/, "").replace(/_/g, " ");
      const flagged = new Set(m.fraud_clusters);
      const rowName = (i) => {
        const g = ordered && groups.find((x) => i >= x.first && i < x.first + x.clusters);
        return (g ? `${g.name} #${i - g.first}` : `cluster ${i}`) + (flagged.has(i) ? " (flags fraud)" : "");
      };
      const text = m.centroids.map((row, i) => row.map((v, j) => `${rowName(i)}<br>${label(m.feature_names[j])}: ${Number(v).toFixed(2)} σ`));
      const rows = m.centroids.length;
      draw("chart-centroids", [{
        z: m.centroids, x: m.feature_names.map(label), y: m.centroids.map((_, i) => i), text, hoverinfo: "text",
        // red above the training mean, blue below
        type: "heatmap", colorscale: "RdBu", reversescale: false, zmid: 0, zmin: -4, zmax: 4,
        colorbar: { title: { text: "σ from the<br>training mean", side: "right" }, thickness: 14 },
      }], {
        height: Math.min(720, 260 + 2.5 * rows),
        margin: { l: 110, r: 20, t: 40, b: 60 },
        xaxis: { side: "bottom", automargin: true, tickangle: 0 },
        yaxis: ordered ? {
          autorange: "reversed", automargin: true, zeroline: false, showgrid: false,
          tickvals: groups.map((g) => g.first + (g.clusters - 1) / 2),
          ticktext: groups.map((g) => `${g.name} (${g.clusters})`),
        } : { autorange: "reversed", automargin: true, title: { text: "cluster" } },
        shapes: ordered ? groups.slice(1).map((g) => ({
          type: "line", xref: "paper", x0: 0, x1: 1, y0: g.first - 0.5, y1: g.first - 0.5, line: { color: "#000", width: 3 },
        })) : [],
      });
    },
    quality(d) {
      const p = d.patterns, x = p.map((r) => r.pattern);
      // each bar is labelled, so a 0 % is seen as a 0 %, not as a missing bar
      draw("chart-quality", ["precision", "recall", "f1"].map((k) => ({
        x, y: p.map((r) => r[k]), name: k, type: "bar", texttemplate: "%{y:.0%}", textposition: "outside", cliponaxis: false,
      })), { barmode: "group", yaxis: { tickformat: ".0%", range: [0, 1.1], automargin: true } });
    },
  };

  function initialData() {
    const node = document.getElementById("page-data");
    try { return node ? JSON.parse(node.textContent) : null; } catch (e) { return null; }
  }

  function render(data) {
    const fn = renderers[page];
    if (fn && data) fn(data);
  }

  async function refresh() {
    try {
      const [apiResponse, pageResponse] = await Promise.all([
        api ? fetch(api, { headers: { Accept: "application/json" } }) : null,
        fetch(window.location.href, { headers: { Accept: "text/html" } }),
      ]);
      if (apiResponse && apiResponse.ok) render(await apiResponse.json());
      if (pageResponse.ok) {
        const doc = new DOMParser().parseFromString(await pageResponse.text(), "text/html");
        document.querySelectorAll("[data-live]").forEach((section) => {
          const fresh = doc.querySelector('[data-live="' + section.dataset.live + '"]');
          if (fresh) section.innerHTML = fresh.innerHTML;
        });
      }
      if (status) { status.textContent = "live · " + new Date().toISOString().slice(11, 19) + " UTC"; status.classList.remove("error"); }
    } catch (e) {
      if (status) { status.textContent = "offline: " + e.message; status.classList.add("error"); }
    }
  }

  function start() {
    render(initialData());
    if (live && page !== "error") window.setInterval(refresh, refreshMs);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
