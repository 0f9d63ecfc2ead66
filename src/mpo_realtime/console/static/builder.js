// The report form: reads the request attributes from the fields, explains the source's
// dimension rules before sending, and shows each problem of the API's answer next to
// the field its source.pointer names (or at the top of the form).

import { el, show } from './format.js';

const ATTRIBUTE = /^\/data\/attributes\/(\w+)/;
const NAMED_IN_DETAIL = /data\.attributes\.(\w+)/;

function splitIds(text) {
  return text.split(/[\s,;]+/).filter(Boolean);
}

/** Offset (ms) of `zone` from UTC at the instant `epochMs`. */
function zoneOffset(epochMs, zone) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
    hour: 'numeric', minute: 'numeric', second: 'numeric',
  }).formatToParts(new Date(epochMs));
  const part = (type) => Number(parts.find((p) => p.type === type).value);
  const asUtc = Date.UTC(part('year'), part('month') - 1, part('day'), part('hour'), part('minute'), part('second'));
  return asUtc - Math.floor(epochMs / 1000) * 1000;
}

/**
 * "2026-01-09T08:00" read as a wall time in `zone` → "2026-01-09T07:00:00Z". A zone the
 * browser does not know is read as UTC: the API then names the zone as the problem.
 */
export function wallTimeToUtc(value, zone) {
  const [date, time] = value.split('T');
  const [year, month, day] = date.split('-').map(Number);
  const [hour, minute, second = 0] = time.split(':').map(Number);
  const naive = Date.UTC(year, month - 1, day, hour, minute, second);
  let instant = naive;
  try {
    instant = naive - zoneOffset(naive, zone);
    instant = naive - zoneOffset(instant, zone);
  } catch {
    instant = naive;
  }
  return new Date(instant).toISOString().replace('.000Z', 'Z');
}

/** "campaignId, minute · clicks, cost · last 60 min · adv. 321": a line for the list. */
export function describe(attributes) {
  const interval = attributes.lookbackWindow !== undefined
    ? `last ${attributes.lookbackWindow} min`
    : `${attributes.startDate || '?'} → ${attributes.endDate || 'now'}`;
  return [
    (attributes.dimensions || []).join(', ') || 'advertiserId',
    (attributes.metrics || []).join(', ') || 'default metrics',
    interval,
    `adv. ${(attributes.advertiserIds || []).join(', ')}`,
  ].join(' · ');
}

export function problemNode(problem) {
  return el(
    'p',
    { className: problem.warning ? 'problem warning' : 'problem' },
    el('strong', {}, problem.title || 'Error'),
    ' ',
    el('code', {}, problem.code || ''),
    problem.detail ? `: ${problem.detail}` : '',
    problem.traceId ? el('span', { className: 'trace' }, ' · trace ID ', el('code', {}, problem.traceId)) : null,
  );
}

export class Builder {
  constructor(form) {
    this.form = form;
    this.global = form.querySelector('#builder-error');
    this.advertisers = form.querySelector('#advertiser-choices');
    this.timeBucket = form.querySelector('#f-time-bucket');
    this.note = form.querySelector('#dimensions-note');
    this.defaultNote = this.note.textContent;
    this.exclusive = this.note.dataset.exclusive.split(',');
    this.zone = form.querySelector('#f-timezone');
    this.lookback = form.querySelector('#f-lookbackWindow');

    form.querySelectorAll('.preset').forEach((button) =>
      button.addEventListener('click', () => {
        this.lookback.value = button.dataset.minutes;
        this.lookback.focus();
      }));
    form.querySelectorAll('input[name=interval]').forEach((radio) =>
      radio.addEventListener('change', () => this.showInterval()));
    this.allToggle = form.querySelector('#advertisers-all');
    this.allToggle.addEventListener('click', () => {
      const boxes = [...this.advertisers.querySelectorAll('input')];
      const all = boxes.every((box) => box.checked);
      boxes.forEach((box) => { box.checked = !all; });
      this.labelAllToggle();
    });
    form.addEventListener('change', () => {
      this.explainDimensions();
      this.labelAllToggle();
    });
    this.fillZones();
    this.showInterval();
    this.explainDimensions();
  }

  fillZones() {
    const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
    const list = this.form.querySelector('#zones');
    list.replaceChildren(...['UTC', ...zones.filter((z) => z !== 'UTC')].map((z) => el('option', { value: z })));
    this.zone.value = browserZone;
  }

  showInterval() {
    const relative = this.form.querySelector('input[name=interval]:checked').value === 'relative';
    show(this.form.querySelector('#relative-fields'), relative);
    show(this.form.querySelector('#absolute-fields'), !relative);
  }

  setAdvertisers(ids) {
    this.advertisers.replaceChildren(...ids.map((id) =>
      el('label', { className: 'choice' }, el('input', { type: 'checkbox', name: 'advertiser', value: id, checked: true }), ` ${id}`)));
    this.labelAllToggle();
  }

  labelAllToggle() {
    const boxes = [...this.advertisers.querySelectorAll('input')];
    this.allToggle.textContent = boxes.length && boxes.every((box) => box.checked) ? 'Select none' : 'Select all';
  }

  dimensions() {
    const chosen = [...this.form.querySelectorAll('input[name=dimension]:checked')].map((box) => box.value);
    return this.timeBucket.value ? [...chosen, this.timeBucket.value] : chosen;
  }

  metrics() {
    return [...this.form.querySelectorAll('input[name=metric]:checked')].map((box) => box.value);
  }

  /** Tells, before anything is sent, when the chosen dimensions break the source's rule. */
  explainDimensions() {
    const clash = this.dimensions().filter((d) => this.exclusive.includes(d));
    const conflict = clash.length > 1;
    this.note.classList.toggle('warning', conflict);
    this.note.textContent = conflict
      ? `${clash.join(' and ')} cannot be used together: the API will refuse this request ` +
        '(invalid-dimensioncombination). Choose a day bucket or leave productId out.'
      : this.defaultNote;
  }

  /** The request attributes, exactly as they will be sent. */
  attributes() {
    const value = (id) => this.form.querySelector(id).value.trim();
    const attributes = {
      advertiserIds: [...this.advertisers.querySelectorAll('input:checked')].map((box) => box.value),
      dimensions: this.dimensions(),
      metrics: this.metrics(),
      timezone: value('#f-timezone'),
      fileFormat: this.form.querySelector('input[name=fileFormat]:checked').value,
    };
    for (const name of ['campaignIds', 'sellerIds', 'partnerIds']) {
      const ids = splitIds(value(`#f-${name}`));
      if (ids.length) attributes[name] = ids;
    }
    if (this.form.querySelector('input[name=interval]:checked').value === 'relative') {
      const minutes = this.lookback.value.trim();
      if (minutes !== '') attributes.lookbackWindow = Number(minutes);
    } else {
      const start = value('#f-startDate');
      const end = value('#f-endDate');
      if (start) attributes.startDate = wallTimeToUtc(start, attributes.timezone);
      if (end) attributes.endDate = wallTimeToUtc(end, attributes.timezone);
    }
    return attributes;
  }

  clearProblems() {
    this.form.querySelectorAll('.problems').forEach((box) => {
      box.replaceChildren();
      show(box, false);
    });
    this.form.querySelectorAll('[aria-invalid]').forEach((field) => field.removeAttribute('aria-invalid'));
  }

  /** Shows each problem beside its field; moves the focus to the first one if asked. */
  showProblems(problems, { focus = true } = {}) {
    let first = null;
    for (const problem of problems) {
      const name = (ATTRIBUTE.exec(problem.source?.pointer || '') || NAMED_IN_DETAIL.exec(problem.detail || '') || [])[1];
      const near = name && this.form.querySelector(`[data-errors-for="${name}"]`);
      // a field of the interval not in use (startDate while "Last minutes" is chosen)
      // cannot show its problem: the top of the form does
      const box = near && !near.closest('[hidden]:not(.problems)') ? near : this.global;
      box.append(problemNode(problem));
      show(box);
      const field = name && this.form.querySelector(`[data-field="${name}"]`);
      if (field) field.setAttribute('aria-invalid', 'true');
      first = first || field || box;
    }
    const focusable = first?.matches('fieldset') ? first.querySelector('input, select') : first;
    if (focus && focusable) {
      if (!focusable.matches('input, select, button')) focusable.setAttribute('tabindex', '-1');
      focusable.focus();
    }
  }
}
