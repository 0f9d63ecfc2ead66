// The console's entry point: signing in and out, running reports, downloads, the list
// of this tab's exports and the live view. The access token lives in this tab only
// (sessionStorage), never in a cookie or a URL.

import { Api, ApiError } from './api.js';
import { Builder, problemNode } from './builder.js';
import { Dataset } from './dataset.js';
import { ExportList } from './exports.js';
import { formatAge, formatBytes, show } from './format.js';
import { runExport } from './jobs.js';
import { LiveView } from './live.js';
import { ResultView } from './results.js';

const SESSION_KEY = 'mpo-console.session';
const CLIENT_KEY = 'mpo-console.client-id';

const body = document.body;
const $ = (selector) => document.querySelector(selector);
const api = new Api({ statsPath: body.dataset.statsPath, mePath: body.dataset.mePath, tokenPath: body.dataset.tokenPath });
const builder = new Builder($('#builder'));
const dataset = new Dataset(`${body.dataset.static}/data-worker.js`);
const result = new ResultView($('#result'), { dataset, libraryUrl: body.dataset.chartLibrary });
const exportList = new ExportList($('#exports'), { onOpen: openExport, onDownload: save });
const live = new LiveView({
  toggle: $('#live'),
  interval: $('#live-interval'),
  status: $('#live-status'),
  api,
  refresh: () => runReport({ live: true }),
});

let session = null; // {token, expiresAt, clientId}
let expiryTimer = null;
let clockTimer = null;
let runs = 0;

// ---- signing in and out -------------------------------------------------------------

function showSignIn(notice = '') {
  show($('#workspace'), false);
  show($('#who'), false);
  show($('#signin'));
  const noticeBox = $('#signin-notice');
  noticeBox.textContent = notice;
  show(noticeBox, Boolean(notice));
  $('#client-id').value = sessionStorage.getItem(CLIENT_KEY) || '';
  $('#client-secret').value = '';
  ($('#client-id').value ? $('#client-secret') : $('#client-id')).focus();
}

function endSession(notice) {
  live.stop();
  clearTimeout(expiryTimer);
  clearInterval(clockTimer);
  session = null;
  api.token = null;
  sessionStorage.removeItem(SESSION_KEY);
  result.reset();
  dataset.forget();
  showSignIn(notice);
}

function signOut() {
  exportList.clear();
  endSession('You are signed out.');
}

async function startSession(saved) {
  session = saved;
  api.token = saved.token;
  const me = await api.me();
  if (exportList.items.length && saved.clientId !== sessionStorage.getItem(CLIENT_KEY)) exportList.clear();
  sessionStorage.setItem(CLIENT_KEY, saved.clientId);
  $('#who-name').textContent = `${me.name} (${me.clientId})`;
  builder.setAdvertisers(me.advertiserIds);
  show($('#signin'), false);
  show($('#who'));
  show($('#workspace'));
  clearTimeout(expiryTimer);
  expiryTimer = setTimeout(
    () => endSession('Your session has expired. Sign in again to go on.'),
    Math.max(0, saved.expiresAt - Date.now()),
  );
  const renderClock = () => {
    $('#session-left').textContent = `session ends in ${formatAge(saved.expiresAt - Date.now())}`;
  };
  renderClock();
  clearInterval(clockTimer);
  clockTimer = setInterval(renderClock, 1000);
  warmChartLibrary();
}

/**
 * Downloads the chart library into the HTTP cache without running it: it is large, and
 * parsing it would hold up the page right after sign-in. The first chart runs it.
 */
function warmChartLibrary() {
  fetch(body.dataset.chartLibrary).then((r) => r.blob()).catch(() => {});
}

api.onUnauthorized = () => endSession('Your session has expired or was revoked. Sign in again to go on.');

$('#signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const errors = $('#signin-error');
  errors.replaceChildren();
  show(errors, false);
  const clientId = $('#client-id').value.trim();
  const button = $('#signin-submit');
  button.disabled = true;
  try {
    const token = await api.signIn(clientId, $('#client-secret').value);
    const saved = { token: token.accessToken, expiresAt: Date.now() + token.expiresIn * 1000, clientId };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved));
    await startSession(saved);
    $('#builder-title').focus({ preventScroll: true });
  } catch (error) {
    const problems = error instanceof ApiError ? error.problems : [{ title: 'Error', code: 'console', detail: error.message }];
    errors.replaceChildren(...problems.map(problemNode));
    show(errors);
    $('#client-secret').focus();
  } finally {
    button.disabled = false;
  }
});

$('#sign-out').addEventListener('click', signOut);

// ---- reports ------------------------------------------------------------------------

function showFailure(error, { focus = true } = {}) {
  if (!(error instanceof ApiError)) {
    builder.showProblems([{ title: 'Console error', code: 'console', detail: error.message }], { focus });
    result.showEnd(`Something went wrong in the console: ${error.message}`);
    return;
  }
  if (error.status === 401) return; // back at sign-in already
  builder.showProblems(error.problems, { focus });
  result.showEnd(`The API refused the request (HTTP ${error.status}): see the problems in the form.`);
}

/** Shows a Done export; answers false (after saying why) when its file was refused. */
async function display(job, { keepView = false } = {}) {
  const summary = await result.showExport(job, api.token, api.downloadPath(job.exportId), { keepView });
  if (!summary.failed) return summary;
  const { status, body: answer, traceId } = summary.failed;
  if (status === 401) {
    api.onUnauthorized();
    return null;
  }
  const problems = answer?.errors ?? [{ title: 'Download failed', code: `http-${status}`, detail: '', traceId }];
  result.showEnd(problems.map((p) => `${p.title} (${p.code}): ${p.detail} · trace ID ${p.traceId}`).join('; '));
  return null;
}

async function runReport({ live: isLive = false } = {}) {
  const mine = ++runs;
  builder.clearProblems();
  const attributes = builder.attributes();
  let job;
  try {
    job = await runExport(api, attributes, {
      fresh: isLive,
      onProgress: (progress) => mine === runs && result.showProgress(progress),
    });
  } catch (error) {
    if (mine === runs) showFailure(error, { focus: !isLive });
    throw error;
  }
  if (mine !== runs) return;
  if (job.warnings.length) builder.showProblems(job.warnings.map((w) => ({ ...w, title: `Warning: ${w.title}`, warning: true })), { focus: false });
  exportList.record(job, { live: isLive });
  if (job.status !== 'Done') {
    result.showEnd(`${job.status}${job.message ? `: ${job.message}` : ''} · export ${job.exportId}`);
    return;
  }
  const summary = await display(job, { keepView: isLive });
  if (summary && mine === runs) exportList.record(job, { rows: summary.total, bytes: summary.bytes, live: isLive });
}

$('#builder').addEventListener('submit', (event) => {
  event.preventDefault();
  if (live.running) live.tick();
  else runReport().catch(() => {});
});

async function openExport(item) {
  const job = { ...item, startedAt: item.createdAt, warnings: [], reused: false, ageSeconds: null };
  try {
    const answer = await api.poll(item.exportId);
    job.status = answer.status;
    job.message = answer.message;
    exportList.record(job);
    if (answer.status !== 'Done') {
      result.showEnd(`${answer.status}${answer.message ? `: ${answer.message}` : ''} · export ${item.exportId}`);
      return;
    }
    live.stop();
    runs += 1; // a report still running will not replace this one
    await display(job);
  } catch (error) {
    showFailure(error);
  }
}

// ---- downloads ----------------------------------------------------------------------

const downloadStatus = $('#download-status');

/** Saves an export's file: fetched with the token (a plain link could not send it). */
async function save(item) {
  downloadStatus.textContent = `Downloading ${item.format.toUpperCase()} export ${item.exportId}…`;
  try {
    const { blob, filename } = await api.downloadBlob(item.exportId);
    const link = Object.assign(document.createElement('a'), { href: URL.createObjectURL(blob), download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    downloadStatus.textContent = `Saved ${filename} (${formatBytes(blob.size)}).`;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 410) exportList.record({ ...item, startedAt: item.createdAt, status: 'Expired' });
    downloadStatus.replaceChildren('Download refused: ', ...error.problems.map(problemNode));
  }
}

/**
 * The file of the shown report in `format`: its own file when it has that format; else
 * the same request in the other format, as a new export (for a relative interval, that
 * is the report run again now).
 */
async function downloadAs(format) {
  const job = result.job;
  if (!job) return;
  if (job.format === format) {
    await save(job);
    return;
  }
  downloadStatus.textContent = `Preparing the ${format.toUpperCase()} file: the same report as a new export…`;
  try {
    const sibling = await runExport(api, { ...job.attributes, fileFormat: format });
    exportList.record(sibling);
    if (sibling.status !== 'Done') {
      downloadStatus.textContent = `The ${format.toUpperCase()} export ended ${sibling.status}: ${sibling.message || ''}`;
      return;
    }
    await save(sibling);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    downloadStatus.replaceChildren('Download refused: ', ...error.problems.map(problemNode));
  }
}

$('#download-csv').addEventListener('click', () => downloadAs('csv'));
$('#download-json').addEventListener('click', () => downloadAs('json'));

// ---- start --------------------------------------------------------------------------

const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
if (saved && saved.expiresAt > Date.now() + 5000) {
  startSession(saved).catch((error) => {
    if (!(error instanceof ApiError && error.status === 401)) endSession(`Could not restore the session: ${error.message}`);
  });
} else {
  if (saved) sessionStorage.removeItem(SESSION_KEY);
  showSignIn(saved ? 'Your session has expired. Sign in again to go on.' : '');
}
