// The rows of one export, held off the page's thread: the worker downloads the file,
// reads it, and answers small questions about it (a sorted page of rows, the series
// of a chart), so that a million rows never stop the page.
//
// Every cell is kept as the exact text of the file: IDs can exceed what a JavaScript
// number holds exactly, and costs are exact decimals. Metrics also get a Float64Array
// for sorting and charts, where a double is exact enough.

'use strict';

const TIME_COLUMNS = new Set(['minute', 'hour', 'day', 'week', 'month', 'year']);
const METRIC_COLUMNS = new Set(['clicks', 'displays', 'cost']);
const TOP_SERIES = 10;
const TOP_BARS = 20;

let data = null; // {columns, kinds, rows, total, numbers: [], epochs: null, order: null}

function kindOf(column) {
  if (TIME_COLUMNS.has(column)) return 'time';
  if (METRIC_COLUMNS.has(column)) return 'metric';
  if (/Id$/.test(column) && column !== 'productId') return 'id';
  return 'text';
}

class FormatError extends Error {}

function fail(at) {
  throw new FormatError(`the file is not in the export format (at character ${at})`);
}

/** The index after the closing quote of the JSON string starting at `start`. */
function endOfJsonString(text, start) {
  let j = start + 1;
  for (;;) {
    j = text.indexOf('"', j);
    if (j < 0) fail(start);
    let slashes = 0;
    for (let k = j - 1; text.charCodeAt(k) === 92; k -= 1) slashes += 1;
    if (slashes % 2 === 0) return j + 1;
    j += 1;
  }
}

/** {"columns":[...],"data":[[...],...],"rows":N}: the first `keep` rows, and the count. */
function readJson(text, keep) {
  const columnsAt = text.indexOf('"columns"');
  const open = text.indexOf('[', columnsAt);
  const close = text.indexOf(']', open);
  if (columnsAt < 0 || open < 0 || close < 0) fail(0);
  const columns = JSON.parse(text.slice(open, close + 1));
  const dataAt = text.indexOf('"data"', close);
  let i = text.indexOf('[', dataAt) + 1;
  if (dataAt < 0 || i === 0) fail(close);
  const n = text.length;
  const skip = () => {
    while (i < n && text.charCodeAt(i) <= 32) i += 1;
  };
  const rows = [];
  let total = 0;
  skip();
  if (text.charCodeAt(i) === 93) return { columns, rows, total };
  for (;;) {
    skip();
    if (text.charCodeAt(i) !== 91) fail(i);
    i += 1;
    const row = [];
    for (;;) {
      skip();
      if (text.charCodeAt(i) === 34) {
        const end = endOfJsonString(text, i);
        const token = text.slice(i, end);
        row.push(token.includes('\\') ? JSON.parse(token) : token.slice(1, -1));
        i = end;
      } else {
        const start = i;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (c === 44 || c === 93 || c <= 32) break;
          i += 1;
        }
        if (i === start) fail(i);
        row.push(text.slice(start, i));
      }
      skip();
      const c = text.charCodeAt(i);
      i += 1;
      if (c === 93) break;
      if (c !== 44) fail(i - 1);
    }
    if (total < keep) rows.push(row);
    total += 1;
    skip();
    const c = text.charCodeAt(i);
    i += 1;
    if (c === 93) break;
    if (c !== 44) fail(i - 1);
  }
  return { columns, rows, total };
}

/** CSV as the API writes it (quoted strings with "" inside, \n line ends). */
function readCsv(text, keep) {
  const n = text.length;
  let i = 0;
  let columns = null;
  const rows = [];
  let total = 0;
  while (i < n) {
    const row = [];
    for (;;) {
      if (text.charCodeAt(i) === 34) {
        let value = '';
        let j = i + 1;
        for (;;) {
          const q = text.indexOf('"', j);
          if (q < 0) fail(i);
          if (text.charCodeAt(q + 1) === 34) {
            value += text.slice(j, q + 1);
            j = q + 2;
          } else {
            value += text.slice(j, q);
            i = q + 1;
            break;
          }
        }
        row.push(value);
      } else {
        const start = i;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (c === 44 || c === 10 || c === 13) break;
          i += 1;
        }
        row.push(text.slice(start, i));
      }
      const c = text.charCodeAt(i);
      i += 1;
      if (c === 44) continue;
      if (c === 13 && text.charCodeAt(i) === 10) i += 1;
      break;
    }
    if (columns === null) columns = row;
    else {
      if (total < keep) rows.push(row);
      total += 1;
    }
  }
  if (columns === null) fail(0);
  return { columns, rows, total };
}

function metricNumbers(column) {
  if (!data.numbers[column]) {
    const values = new Float64Array(data.rows.length);
    data.rows.forEach((row, r) => {
      values[r] = Number(row[column]);
    });
    data.numbers[column] = values;
  }
  return data.numbers[column];
}

/** Epoch ms of each row's time bucket (each distinct text parsed once). */
function timeEpochs(column) {
  if (!data.epochs) {
    const seen = new Map();
    const values = new Float64Array(data.rows.length);
    data.rows.forEach((row, r) => {
      const text = row[column];
      let epoch = seen.get(text);
      if (epoch === undefined) {
        epoch = Date.parse(text);
        seen.set(text, epoch);
      }
      values[r] = epoch;
    });
    data.epochs = values;
  }
  return data.epochs;
}

function newestTime() {
  const column = data.kinds.indexOf('time');
  if (column < 0 || data.rows.length === 0) return null;
  const epochs = timeEpochs(column);
  let best = 0;
  for (let r = 1; r < epochs.length; r += 1) if (epochs[r] > epochs[best]) best = r;
  return { text: data.rows[best][column], epochMs: epochs[best] };
}

function compareIds(a, b) {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function comparator(column) {
  const kind = data.kinds[column];
  const rows = data.rows;
  if (kind === 'metric') {
    const values = metricNumbers(column);
    return (a, b) => values[a] - values[b] || a - b;
  }
  if (kind === 'time') {
    const values = timeEpochs(column);
    return (a, b) => values[a] - values[b] || a - b;
  }
  if (kind === 'id') return (a, b) => compareIds(rows[a][column], rows[b][column]) || a - b;
  return (a, b) => {
    const x = rows[a][column];
    const y = rows[b][column];
    return x < y ? -1 : x > y ? 1 : a - b;
  };
}

function sortedOrder(column, descending) {
  const key = `${column}:${descending}`;
  if (data.order?.key === key) return data.order.indices;
  const indices = new Uint32Array(data.rows.length);
  for (let r = 0; r < indices.length; r += 1) indices[r] = r;
  if (column !== null) {
    const compare = comparator(column);
    indices.sort(descending ? (a, b) => compare(b, a) : compare);
  }
  data.order = { key, indices };
  return indices;
}

function wallTime(text) {
  // "2026-03-29T03:00:00+02:00" → "2026-03-29 03:00:00": the chart shows the report's
  // own local time, as the file states it.
  return text.slice(0, 19).replace('T', ' ');
}

function lineChart(metric, timeColumn, keyColumns) {
  const values = metricNumbers(metric);
  const epochs = timeEpochs(timeColumn);
  const keys = data.rows.map((row) => (keyColumns.length ? keyColumns.map((c) => row[c]).join(' · ') : 'all'));
  const totals = new Map();
  keys.forEach((key, r) => totals.set(key, (totals.get(key) || 0) + values[r]));
  const ranked = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a) || (a < b ? -1 : 1));
  const top = new Map(ranked.slice(0, TOP_SERIES).map((key) => [key, []]));
  const others = new Map(); // epoch → {text, sum} of every series beyond the top ones
  keys.forEach((key, r) => {
    const points = top.get(key);
    if (points) {
      points.push(r);
      return;
    }
    const bucket = others.get(epochs[r]) || { text: data.rows[r][timeColumn], sum: 0 };
    bucket.sum += values[r];
    others.set(epochs[r], bucket);
  });
  const series = [...top].map(([name, points]) => {
    points.sort((a, b) => epochs[a] - epochs[b]);
    return {
      name,
      x: points.map((r) => wallTime(data.rows[r][timeColumn])),
      y: points.map((r) => values[r]),
    };
  });
  const otherTimes = [...others.keys()].sort((a, b) => a - b);
  return {
    type: 'line',
    metric: data.columns[metric],
    timeColumn: data.columns[timeColumn],
    keyColumns: keyColumns.map((c) => data.columns[c]),
    series,
    others: otherTimes.length
      ? {
          count: ranked.length - TOP_SERIES,
          x: otherTimes.map((t) => wallTime(others.get(t).text)),
          y: otherTimes.map((t) => others.get(t).sum),
        }
      : null,
  };
}

function barChart(metric, keyColumns) {
  const values = metricNumbers(metric);
  const order = sortedOrder(metric, true);
  const top = Array.from(order.subarray(0, TOP_BARS));
  let rest = 0;
  for (let k = TOP_BARS; k < order.length; k += 1) rest += values[order[k]];
  return {
    type: 'bar',
    metric: data.columns[metric],
    keyColumns: keyColumns.map((c) => data.columns[c]),
    labels: top.map((r) => keyColumns.map((c) => data.rows[r][c]).join(' · ')),
    values: top.map((r) => values[r]),
    others: order.length > TOP_BARS ? { count: order.length - TOP_BARS, total: rest } : null,
  };
}

const operations = {
  async load({ url, token, keep }) {
    // The rows shown until now stay until the new file is read: the page may still ask
    // for another page of them meanwhile (a live refresh runs while the reader pages).
    const started = performance.now();
    const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store', credentials: 'omit' });
    if (!response.ok) {
      let body = null;
      try {
        body = await response.json();
      } catch {
        body = null;
      }
      return { failed: { status: response.status, body, traceId: response.headers.get('x-trace-id') || '' } };
    }
    const buffer = await response.arrayBuffer();
    const text = new TextDecoder().decode(buffer);
    const fetched = performance.now();
    const json = (response.headers.get('content-type') || '').includes('json');
    const parsed = json ? readJson(text, keep) : readCsv(text, keep);
    const kinds = parsed.columns.map(kindOf);
    data = { ...parsed, kinds, numbers: [], epochs: null, order: null };
    return {
      columns: parsed.columns,
      kinds,
      total: parsed.total,
      kept: parsed.rows.length,
      bytes: buffer.byteLength,
      format: json ? 'json' : 'csv',
      newest: newestTime(),
      timings: { fetchMs: fetched - started, readMs: performance.now() - fetched },
    };
  },

  page({ column, descending, offset, limit }) {
    if (!data) return null;
    const order = sortedOrder(column, descending);
    const rows = [];
    for (let k = offset; k < Math.min(offset + limit, order.length); k += 1) rows.push(data.rows[order[k]]);
    return { rows, offset, kept: data.rows.length, total: data.total };
  },

  chart({ metric }) {
    if (!data) return null;
    const column = data.columns.indexOf(metric);
    if (column < 0) return null;
    const timeColumn = data.kinds.indexOf('time');
    const keyColumns = data.kinds.flatMap((kind, c) => (kind === 'id' || kind === 'text' ? [c] : []));
    return timeColumn >= 0 ? lineChart(column, timeColumn, keyColumns) : barChart(column, keyColumns);
  },

  forget() {
    data = null;
    return null;
  },
};

self.onmessage = async ({ data: message }) => {
  try {
    const result = await operations[message.op](message);
    self.postMessage({ id: message.id, result });
  } catch (error) {
    self.postMessage({ id: message.id, error: `${error.name}: ${error.message}` });
  }
};
