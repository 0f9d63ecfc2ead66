// The live view: re-runs the report every few seconds while the switch is on and the
// tab is visible. It slows down when the report budget runs low (x-ratelimit-remaining,
// until x-ratelimit-reset) and waits as long as a 429's Retry-After says.

import { ApiError } from './api.js';
import { formatAge } from './format.js';

/** Calls left in the minute that the live view never spends (kept for the reader). */
const RESERVE_SHARE = 0.2;

export class LiveView {
  constructor({ toggle, interval, status, api, refresh }) {
    this.toggle = toggle;
    this.interval = interval;
    this.status = status;
    this.api = api;
    this.refresh = refresh; // async () => void; throws ApiError
    this.timer = null;
    this.countdown = null;
    this.running = false;
    this.busy = false;
    toggle.addEventListener('change', () => (toggle.checked ? this.start() : this.stop()));
    document.addEventListener('visibilitychange', () => this.onVisibility());
  }

  start() {
    this.running = true;
    this.toggle.checked = true;
    this.tick();
  }

  stop(reason = '') {
    this.running = false;
    this.toggle.checked = false;
    this.clearTimers();
    this.status.textContent = reason;
  }

  clearTimers() {
    clearTimeout(this.timer);
    clearInterval(this.countdown);
  }

  onVisibility() {
    if (!this.running) return;
    if (document.hidden) {
      this.clearTimers();
      this.status.textContent = 'Live view paused while this tab is hidden.';
    } else if (!this.busy) {
      this.tick();
    }
  }

  /** Milliseconds until the next run, as the interval and the report budget allow. */
  delay(error) {
    let wait = Number(this.interval.value) * 1000;
    if (error instanceof ApiError && error.status === 429) {
      wait = Math.max(wait, (error.retryAfter ?? 60) * 1000);
    }
    const budget = this.api.budget;
    if (budget && budget.remaining <= Math.ceil(budget.limit * RESERVE_SHARE)) {
      wait = Math.max(wait, budget.resetAt - Date.now());
    }
    return wait;
  }

  async tick() {
    this.clearTimers();
    if (!this.running || document.hidden) return;
    this.busy = true;
    this.status.textContent = 'Live view: refreshing…';
    let error = null;
    try {
      await this.refresh();
    } catch (caught) {
      error = caught;
    } finally {
      this.busy = false;
    }
    if (!this.running) return;
    if (error && !(error instanceof ApiError && (error.status === 429 || error.status >= 500 || error.status === 0))) {
      this.stop('Live view stopped: the report has a problem (see above).');
      return;
    }
    if (document.hidden) {
      this.onVisibility();
      return;
    }
    const due = Date.now() + this.delay(error);
    const why = error ? (error.status === 429 ? ' (rate limit reached)' : ' (the server did not answer)') : '';
    const render = () => {
      this.status.textContent = `Live view on: next refresh in ${formatAge(due - Date.now())}${why}.`;
    };
    render();
    this.countdown = setInterval(render, 1000);
    this.timer = setTimeout(() => this.tick(), due - Date.now());
  }
}
