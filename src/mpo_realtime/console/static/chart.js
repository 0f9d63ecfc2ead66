// The result chart, drawn with plotly.js (served by our process from the plotly
// package): a line chart over time when the report has a time bucket, one series per
// value of the other dimensions (the top 10, then "others"); otherwise a horizontal
// bar chart of the top 20 rows by the chosen metric.

import { chartText } from './format.js';

const LABEL_LIMIT = 48;
const CONFIG = {
  responsive: true,
  displaylogo: false, // the logo is an SVG with an inline <style>, which the CSP refuses
  modeBarButtonsToRemove: ['select2d', 'lasso2d'],
};
const BASE_LAYOUT = {
  margin: { t: 16, r: 16, b: 48, l: 64 },
  font: { family: 'system-ui, sans-serif', size: 13, color: '#1f2933' },
  paper_bgcolor: '#ffffff',
  plot_bgcolor: '#ffffff',
  hoverlabel: { namelength: -1 },
};

let loading = null;

/** Loads the chart library once, on first need (it is large; sign-in does not wait). */
export function loadChartLibrary(url) {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = url;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        loading = null;
        reject(new Error('the chart library could not be loaded'));
      };
      document.head.append(script);
    });
  }
  return loading;
}

/** Markers help to read a few points; on long series they only blur the line. */
const MARKERS_UP_TO = 90;

function lineFigure(summary, zone) {
  const longest = Math.max(0, ...summary.series.map((s) => s.x.length), summary.others?.x.length ?? 0);
  const mode = longest <= MARKERS_UP_TO ? 'lines+markers' : 'lines';
  const traces = summary.series.map((series) => ({
    type: 'scatter',
    mode,
    name: chartText(series.name, LABEL_LIMIT),
    hovertext: chartText(series.name),
    hovertemplate: '%{hovertext}<br>%{x}<br>%{y}<extra></extra>',
    x: series.x,
    y: series.y,
  }));
  if (summary.others) {
    traces.push({
      type: 'scatter',
      mode,
      name: `others (${summary.others.count})`,
      line: { dash: 'dot', color: '#6b7280' },
      marker: { color: '#6b7280' },
      x: summary.others.x,
      y: summary.others.y,
    });
  }
  const layout = {
    ...BASE_LAYOUT,
    xaxis: { type: 'date', title: { text: chartText(`${summary.timeColumn} (${zone})`) }, automargin: true },
    yaxis: { title: { text: chartText(summary.metric) }, rangemode: 'tozero', automargin: true },
    showlegend: true,
    legend: { orientation: 'h', y: -0.25, title: { text: chartText(summary.keyColumns.join(' · ')) } },
  };
  return { traces, layout };
}

function barFigure(summary) {
  const positions = summary.labels.map((_, k) => k);
  const traces = [{
    type: 'bar',
    orientation: 'h',
    name: chartText(summary.metric),
    x: summary.values,
    y: positions,
    hovertext: summary.labels.map((label) => chartText(label)),
    hovertemplate: '%{hovertext}<br>%{x}<extra></extra>',
    marker: { color: '#1d4ed8' },
  }];
  const layout = {
    ...BASE_LAYOUT,
    // Numbered positions with text ticks: two long labels that shorten alike stay two bars.
    yaxis: {
      tickvals: positions,
      ticktext: summary.labels.map((label) => chartText(label, LABEL_LIMIT)),
      autorange: 'reversed',
      automargin: true,
      title: { text: chartText(summary.keyColumns.join(' · ')) },
    },
    xaxis: { title: { text: chartText(summary.metric) }, rangemode: 'tozero', automargin: true },
    showlegend: false,
  };
  return { traces, layout };
}

/** Draws `summary` (from the data worker) into `node`; answers a one-line description. */
export async function drawChart(node, summary, { libraryUrl, zone }) {
  const Plotly = await loadChartLibrary(libraryUrl);
  const { traces, layout } = summary.type === 'line' ? lineFigure(summary, zone) : barFigure(summary);
  // Keep the reader's zoom across live refreshes of the same report.
  layout.uirevision = `${summary.type}:${summary.metric}:${summary.keyColumns.join(',')}`;
  await Plotly.react(node, traces, layout, CONFIG);
  if (summary.type === 'line') {
    const points = summary.series.reduce((sum, s) => sum + s.x.length, 0);
    const others = summary.others ? `, plus "others" for ${summary.others.count} more series` : '';
    return `Line chart of ${summary.metric} by ${summary.timeColumn}: ${summary.series.length} series, ${points} points${others}.`;
  }
  const others = summary.others ? ` The other ${summary.others.count} rows are not drawn.` : '';
  return `Bar chart of the top ${summary.values.length} rows by ${summary.metric}.${others}`;
}

export function clearChart(node) {
  if (window.Plotly) window.Plotly.purge(node);
  node.replaceChildren();
}
