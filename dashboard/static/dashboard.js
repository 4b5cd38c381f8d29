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

  const toDate = (ms) => new Date(ms);
  const layout = (title, extra) => Object.assign({
    title: { text: title, font: { size: 14 } },
    margin: { l: 50, r: 20, t: 40, b: 40 },
    height: 280,
    legend: { orientation: "h", y: -0.2 },
    paper_bgcolor: "rgba(0,0,0,0)",
  }, extra || {});

  function draw(id, traces, extra) {
    const el = document.getElementById(id);
    if (!el || !window.Plotly) return;
    const points = traces.reduce((n, t) => n + ((t.x || t.z || []).length), 0);
    window.Plotly.react(el, traces, layout(el.dataset.title || "", extra), { displaylogo: false, displayModeBar: false, responsive: true });
    // the number of points drawn, for readers and for the browser test
    el.dataset.points = String(points);
    el.classList.toggle("no-data", points === 0);
  }

  const renderers = {
    overview(d) {
      // long ranges come in buckets of several minutes (d.bucket_minutes): plot per-minute averages
      const s = d.series, x = s.map((r) => toDate(r.minute)), perMin = (v) => v / (d.bucket_minutes || 1);
      draw("chart-volume", [
        { x, y: s.map((r) => perMin(r.transactions)), name: "transactions / min", type: "scatter", mode: "lines+markers" },
        { x, y: s.map((r) => perMin(r.alerts)), name: "alerts / min", type: "scatter", mode: "lines+markers", yaxis: "y2" },
      ], { yaxis2: { overlaying: "y", side: "right", rangemode: "tozero" } });
      draw("chart-amounts", [
        { x, y: s.map((r) => perMin(r.amount_normal_minor) / 100), name: "normal", type: "bar" },
        { x, y: s.map((r) => perMin(r.amount_flagged_minor) / 100), name: "flagged", type: "bar" },
      ], { barmode: "stack" });
      draw("chart-shares", [
        { x, y: s.map((r) => (r.transactions ? r.flagged_transactions / r.transactions : null)), name: "flagged share", type: "scatter", mode: "lines" },
        { x, y: s.map((r) => (r.transactions ? r.failed_transactions / r.transactions : null)), name: "failed share", type: "scatter", mode: "lines" },
      ], { yaxis: { tickformat: ".1%" } });
      draw("chart-latency", [
        { x, y: s.map((r) => r.latency_ms_avg), name: "avg", type: "scatter", mode: "lines" },
        { x, y: s.map((r) => r.latency_ms_max), name: "max", type: "scatter", mode: "lines" },
      ]);
      draw("chart-late", [
        { x, y: s.map((r) => perMin(r.late_records)), name: "late", type: "bar" },
        { x, y: s.map((r) => perMin(r.dlq_records)), name: "DLQ", type: "bar" },
      ]);
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
      ], { yaxis2: { overlaying: "y", side: "right" } });
      draw("chart-transactions", [{
        x: t.map((r) => toDate(r.event_time)), y: t.map((r) => r.amount_minor / 100), text: t.map((r) => r.status),
        name: "amount", type: "scatter", mode: "markers",
      }]);
    },
    model(d) {
      const m = d.models[0];
      if (!m || !m.centroids.length) { draw("chart-centroids", []); return; }
      draw("chart-centroids", [{
        z: m.centroids, x: m.feature_names, y: m.centroids.map((_, i) => "cluster " + i + (m.fraud_clusters.includes(i) ? " (fraud)" : "")),
        type: "heatmap", colorscale: "RdBu", reversescale: true,
      }], { height: 320 });
    },
    quality(d) {
      const p = d.patterns, x = p.map((r) => r.pattern);
      draw("chart-quality", ["precision", "recall", "f1"].map((k) => ({ x, y: p.map((r) => r[k]), name: k, type: "bar" })),
        { barmode: "group", yaxis: { tickformat: ".0%", range: [0, 1] } });
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
      if (status) { status.textContent = "live · " + new Date().toLocaleTimeString(); status.classList.remove("error"); }
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
