// The result panel: the job's status while it runs, then its chart, a sortable table
// (one page at a time, asked of the data worker), and how old the newest data is.

import { clearChart, drawChart } from './chart.js';
import { el, formatAge, formatBytes, formatClock, formatCount, formatDuration, show } from './format.js';

/** Rows the browser keeps of one export; the file itself always has them all. */
export const KEEP_ROWS = 1_000_000;
const BUCKET_NAMES = { minute: 'minute', hour: 'hour', day: 'day', week: 'week', month: 'month', year: 'year' };

function cellText(kind, column, value) {
  if (kind === 'metric' && column !== 'cost') return formatCount(value);
  return value; // IDs, costs, times and product IDs exactly as the file has them
}

export class ResultView {
  constructor(root, { dataset, libraryUrl }) {
    this.root = root;
    this.dataset = dataset;
    this.libraryUrl = libraryUrl;
    this.status = root.querySelector('#job-status');
    this.age = root.querySelector('#data-age');
    this.body = root.querySelector('#result-body');
    this.chart = root.querySelector('#chart');
    this.chartCaption = root.querySelector('#chart-caption');
    this.metric = root.querySelector('#chart-metric');
    this.table = root.querySelector('#rows');
    this.caption = root.querySelector('#rows-caption');
    this.pageInfo = root.querySelector('#page-info');
    this.pageSize = root.querySelector('#page-size');
    this.job = null;
    this.summary = null;
    this.sort = { column: null, descending: false };
    this.offset = 0;
    this.ticker = null;

    this.metric.addEventListener('change', () => this.renderChart());
    this.pageSize.addEventListener('change', () => this.goTo(0));
    root.querySelector('#page-first').addEventListener('click', () => this.goTo(0));
    root.querySelector('#page-prev').addEventListener('click', () => this.goTo(this.offset - this.limit()));
    root.querySelector('#page-next').addEventListener('click', () => this.goTo(this.offset + this.limit()));
    root.querySelector('#page-last').addEventListener('click', () =>
      this.goTo(Math.floor(Math.max(0, this.kept() - 1) / this.limit()) * this.limit()));
    this.table.querySelector('thead').addEventListener('click', (event) => {
      const button = event.target.closest('button[data-column]');
      if (button) this.sortBy(Number(button.dataset.column));
    });
  }

  limit() {
    return Number(this.pageSize.value);
  }

  kept() {
    return this.summary ? this.summary.kept : 0;
  }

  setStatus(text, kind = '') {
    this.status.textContent = text;
    this.status.className = `status ${kind}`.trim();
  }

  /** pending, loading, ready or ended: on the panel, for scripts and tests to wait on. */
  setState(state, exportId = '') {
    this.root.dataset.state = state;
    this.root.dataset.exportId = exportId;
  }

  /** While the job runs: its status and the time since it was created. */
  showProgress(job) {
    clearInterval(this.ticker);
    this.setState('pending', job.exportId);
    const render = () => this.setStatus(`${job.status} · ${formatDuration(Date.now() - job.startedAt)} · export ${job.exportId}`, 'pending');
    render();
    this.ticker = setInterval(render, 100);
  }

  /** A job that ended without a file (Failure, Expired), or a request the API refused. */
  showEnd(text, kind = 'failed') {
    clearInterval(this.ticker);
    this.setState('ended', this.root.dataset.exportId);
    this.setStatus(text, kind);
  }

  reset() {
    clearInterval(this.ticker);
    this.job = null;
    this.summary = null;
    show(this.body, false);
    show(this.age, false);
    clearChart(this.chart);
    this.setState('');
    this.setStatus('Build a report and run it.');
  }

  /**
   * Downloads and shows a Done export. `keepView` (live refreshes) keeps the sort, page
   * and chart metric; a new report starts from the file's order. Answers the summary,
   * or {failed} with the API's answer when the download was refused.
   */
  async showExport(job, token, url, { keepView = false } = {}) {
    if (keepView && this.summary && this.job?.exportId === job.exportId) {
      // a live refresh answered with the export already shown (reused): same file
      this.job = { ...job, durationMs: this.job.durationMs, reused: true };
      this.setStatus(this.doneText(), 'done');
      this.startAgeTicker();
      this.setState('ready', job.exportId);
      return this.summary;
    }
    clearInterval(this.ticker);
    this.setState('loading', job.exportId);
    this.setStatus(`Done in ${formatDuration(job.durationMs)} · downloading…`, 'pending');
    const summary = await this.dataset.load(url, token, KEEP_ROWS);
    if (summary.failed) {
      this.summary = null;
      show(this.body, false);
      show(this.age, false);
      return summary;
    }
    const sameShape = keepView && this.summary && this.summary.columns.join() === summary.columns.join();
    this.job = job;
    this.summary = summary;
    this.fetchedAt = Date.now();
    Object.assign(this.root.dataset, {
      rows: summary.total, bytes: summary.bytes,
      fetchMs: Math.round(summary.timings.fetchMs), readMs: Math.round(summary.timings.readMs),
    });
    if (!sameShape) {
      this.sort = { column: null, descending: false };
      this.offset = 0;
    }
    const metrics = summary.columns.filter((_, c) => summary.kinds[c] === 'metric');
    const chosen = metrics.includes(this.metric.value) ? this.metric.value : metrics[0];
    this.metric.replaceChildren(...metrics.map((m) => el('option', { value: m, selected: m === chosen }, m)));
    this.setStatus(this.doneText(), 'done');
    show(this.body);
    this.renderHead();
    await Promise.all([this.renderPage(), this.renderChart()]);
    this.startAgeTicker();
    if (summary === this.summary) this.setState('ready', job.exportId);
    return summary;
  }

  doneText() {
    const { job, summary } = this;
    const reused = job.reused ? ' · reused export' : '';
    return `Done in ${formatDuration(job.durationMs)} · ${formatCount(summary.total)} rows · ` +
      `${formatBytes(summary.bytes)} ${summary.format.toUpperCase()}${reused} · export ${job.exportId}`;
  }

  startAgeTicker() {
    clearInterval(this.ticker);
    const newest = this.summary.newest;
    const dataAge = this.job.ageSeconds;
    const render = () => {
      const parts = [];
      if (newest) {
        const bucket = BUCKET_NAMES[this.summary.columns[this.summary.kinds.indexOf('time')]];
        parts.push(`Newest data point: the ${bucket} of ${newest.text} (began ${formatAge(Date.now() - newest.epochMs)} ago)`);
      }
      parts.push(`fetched at ${formatClock(new Date(this.fetchedAt))} (${formatAge(Date.now() - this.fetchedAt)} ago)`);
      if (dataAge !== null && dataAge !== undefined) parts.push(`data ${formatAge(dataAge * 1000)} old when fetched`);
      this.age.textContent = parts.join(' · ');
      show(this.age);
    };
    render();
    this.ticker = setInterval(render, 1000);
  }

  renderHead() {
    const { columns, kinds } = this.summary;
    const row = el('tr', {}, ...columns.map((name, c) => {
      const sorted = this.sort.column === c;
      const direction = sorted ? (this.sort.descending ? 'descending' : 'ascending') : 'none';
      const arrow = sorted ? (this.sort.descending ? ' ▼' : ' ▲') : '';
      return el(
        'th',
        { scope: 'col', 'aria-sort': direction, className: kinds[c] === 'metric' ? 'num' : '' },
        el('button', { type: 'button', dataset: { column: String(c) }, title: `Sort by ${name}` }, name, el('span', { 'aria-hidden': 'true' }, arrow)),
      );
    }));
    this.table.querySelector('thead').replaceChildren(row);
  }

  async renderPage() {
    const summary = this.summary;
    const page = await this.dataset.page(this.sort.column, this.sort.descending, this.offset, this.limit());
    if (!page || summary !== this.summary) return;
    const { columns, kinds } = summary;
    const body = this.table.querySelector('tbody');
    body.replaceChildren(...page.rows.map((values) =>
      el('tr', {}, ...values.map((value, c) => el('td', { className: kinds[c] === 'metric' ? 'num' : '' }, cellText(kinds[c], columns[c], value))))));
    const shown = page.rows.length;
    const partial = summary.kept < summary.total
      ? ` The browser keeps the first ${formatCount(summary.kept)}; download the file for all of them.`
      : '';
    this.caption.textContent = `${formatCount(summary.total)} rows.${partial}`;
    this.pageInfo.textContent = shown
      ? `Rows ${formatCount(this.offset + 1)}–${formatCount(this.offset + shown)} of ${formatCount(summary.kept)}`
      : 'No rows';
    this.root.querySelector('#page-first').disabled = this.offset === 0;
    this.root.querySelector('#page-prev').disabled = this.offset === 0;
    this.root.querySelector('#page-next').disabled = this.offset + shown >= summary.kept;
    this.root.querySelector('#page-last').disabled = this.offset + shown >= summary.kept;
    // what the table shows now (sort column, direction, first row), for scripts to wait on
    this.table.dataset.view = `${this.sort.column ?? ''}:${this.sort.descending}:${this.offset}`;
  }

  async renderChart() {
    const summary = this.summary;
    if (!summary) return;
    if (summary.total === 0) {
      clearChart(this.chart);
      this.chartCaption.textContent = 'No rows: nothing happened in this interval for this selection.';
      return;
    }
    const figure = await this.dataset.chart(this.metric.value);
    if (summary !== this.summary || !figure) return;
    const zone = this.job.attributes.timezone || 'UTC';
    const description = await drawChart(this.chart, figure, { libraryUrl: this.libraryUrl, zone });
    const partial = summary.kept < summary.total ? ` It covers the first ${formatCount(summary.kept)} rows.` : '';
    this.chartCaption.textContent = description + partial;
  }

  goTo(offset) {
    if (!this.summary) return Promise.resolve();
    const last = Math.max(0, this.kept() - 1);
    this.offset = Math.max(0, Math.min(offset, Math.floor(last / this.limit()) * this.limit()));
    return this.renderPage();
  }

  sortBy(column) {
    const same = this.sort.column === column;
    this.sort = { column, descending: same ? !this.sort.descending : this.summary.kinds[column] === 'metric' };
    this.offset = 0;
    this.renderHead();
    this.table.querySelector(`button[data-column="${column}"]`).focus();
    return this.renderPage();
  }
}
