// The exports made in this browser tab: status, rows, size and duration, each one to
// reopen or download. Kept in sessionStorage, so a reload keeps the list and closing
// the tab forgets it, like the token.

import { describe } from './builder.js';
import { el, formatBytes, formatClock, formatCount, formatDuration, show } from './format.js';

const KEY = 'mpo-console.exports';
const MOST = 50;

export class ExportList {
  constructor(root, { onOpen, onDownload }) {
    this.root = root;
    this.body = root.querySelector('tbody');
    this.table = root.querySelector('#exports-table');
    this.empty = root.querySelector('#exports-empty');
    this.items = JSON.parse(sessionStorage.getItem(KEY) || '[]');
    this.body.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (!button) return;
      const item = this.items.find((i) => i.exportId === button.dataset.exportId);
      if (item) (button.dataset.action === 'open' ? onOpen : onDownload)(item);
    });
    this.render();
  }

  /** Adds or updates the entry of `job` (matched by export ID), newest first. */
  record(job, extra = {}) {
    const existing = this.items.find((i) => i.exportId === job.exportId);
    const item = {
      exportId: job.exportId,
      createdAt: existing?.createdAt ?? job.startedAt,
      attributes: job.attributes,
      format: job.format,
      status: job.status,
      message: job.message ?? null,
      durationMs: existing?.durationMs ?? job.durationMs,
      rows: existing?.rows ?? null,
      bytes: existing?.bytes ?? null,
      ...extra,
    };
    // The live view keeps one entry, its newest export, not one per refresh.
    const others = this.items.filter((i) => i.exportId !== job.exportId && !(item.live && i.live));
    this.items = [item, ...others].slice(0, MOST);
    sessionStorage.setItem(KEY, JSON.stringify(this.items));
    this.render();
    return item;
  }

  clear() {
    this.items = [];
    sessionStorage.removeItem(KEY);
    this.render();
  }

  render() {
    show(this.empty, this.items.length === 0);
    show(this.table, this.items.length > 0);
    this.body.replaceChildren(...this.items.map((item) => {
      const done = item.status === 'Done';
      const label = `${item.format.toUpperCase()} export of ${formatClock(new Date(item.createdAt))}`;
      return el(
        'tr',
        {},
        el('td', {}, formatClock(new Date(item.createdAt))),
        el('td', { className: 'report' }, describe(item.attributes), el('br'), el('code', { className: 'muted' }, item.exportId)),
        el('td', { className: `state ${item.status.toLowerCase()}` }, item.status, item.message ? `: ${item.message}` : ''),
        el('td', { className: 'num' }, item.rows === null ? '' : formatCount(item.rows)),
        el('td', { className: 'num' }, formatBytes(item.bytes)),
        el('td', { className: 'num' }, formatDuration(item.durationMs)),
        el(
          'td',
          { className: 'row-actions' },
          el('button', { type: 'button', dataset: { action: 'open', exportId: item.exportId }, 'aria-label': `Open the ${label}` }, 'Open'),
          el('button', { type: 'button', dataset: { action: 'download', exportId: item.exportId }, disabled: !done, 'aria-label': `Download the ${label}` }, `Download ${item.format.toUpperCase()}`),
        ),
      );
    }));
  }
}
