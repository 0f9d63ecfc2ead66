// Running one export: create it, poll until it is no longer Pending, and time it.

import { ApiError } from './api.js';

/**
 * Delays before the first polls (ms). Most exports are written in well under a second,
 * so the first polls come quickly; after them the console waits as long as the API's
 * Retry-After asks (5 s by default), as the source asks of every client.
 */
const FIRST_POLLS = [200, 400, 800, 1600];
const DEFAULT_PACE = 5000;

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new DOMException('cancelled', 'AbortError'));
    });
  });

/**
 * Creates an export of `attributes` and waits for its end. `onProgress(job)` is called
 * with {exportId, status, startedAt} while it runs. Answers the finished job record:
 * {exportId, status, message, attributes, format, startedAt, durationMs, reused, ...}.
 * A 429 is waited out (its Retry-After) while polling; on create it is thrown.
 */
export async function runExport(api, attributes, { fresh = false, onProgress = () => {}, signal } = {}) {
  const startedAt = Date.now();
  const created = await api.createExport(attributes, { fresh });
  const job = {
    exportId: created.exportId,
    status: created.status,
    message: created.message,
    warnings: created.warnings,
    reused: created.reused,
    ageSeconds: created.ageSeconds,
    attributes,
    format: (attributes.fileFormat || 'csv').toLowerCase(),
    startedAt,
    durationMs: null,
  };
  onProgress(job);
  let polls = 0;
  let wait = FIRST_POLLS[0];
  while (job.status === 'Pending') {
    await sleep(wait, signal);
    try {
      const answer = await api.poll(job.exportId);
      job.status = answer.status;
      job.message = answer.message;
      polls += 1;
      wait = polls < FIRST_POLLS.length ? FIRST_POLLS[polls] : (answer.retryAfter ?? DEFAULT_PACE / 1000) * 1000;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 429) throw error;
      wait = (error.retryAfter ?? DEFAULT_PACE / 1000) * 1000;
    }
    onProgress(job);
  }
  job.durationMs = Date.now() - startedAt;
  return job;
}

export { sleep };
