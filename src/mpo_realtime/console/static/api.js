// The public API, as the console calls it: the same endpoints and answers that every
// integrator uses. Errors come back as ApiError with the API's problems (code, detail,
// traceId, source.pointer), whatever shape the endpoint answered in.

export class ApiError extends Error {
  constructor(status, problems, { retryAfter = null } = {}) {
    super(problems.map((p) => `${p.code}: ${p.detail}`).join('; '));
    this.status = status;
    this.problems = problems;
    this.retryAfter = retryAfter;
  }
}

function retryAfterOf(response) {
  const value = Number(response.headers.get('retry-after'));
  return Number.isFinite(value) && value >= 0 ? value : null;
}

async function problemsOf(response) {
  const trace = response.headers.get('x-trace-id') || '';
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (body && Array.isArray(body.errors) && body.errors.length) {
    return body.errors.map((p) => ({ ...p, traceId: p.traceId || trace }));
  }
  if (body && typeof body.error === 'string') {
    // an OAuth2-style answer of the token endpoint: {error, error_description}
    return [{ code: body.error, title: 'Sign-in refused', detail: body.error_description || '', traceId: trace }];
  }
  return [{ code: `http-${response.status}`, title: 'Request failed', detail: `HTTP ${response.status}`, traceId: trace }];
}

export class Api {
  constructor({ statsPath, mePath, tokenPath }) {
    this.statsPath = statsPath;
    this.mePath = mePath;
    this.tokenPath = tokenPath;
    this.token = null;
    /** The report budget as the last answer reported it: {limit, remaining, resetAt}. */
    this.budget = null;
    /** Called with the problems when the API refuses the token (expired, revoked). */
    this.onUnauthorized = () => {};
  }

  async send(path, { method = 'GET', headers = {}, body, auth = true } = {}) {
    const sent = { ...headers };
    if (auth) sent.Authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await fetch(path, { method, headers: sent, body, cache: 'no-store', credentials: 'omit' });
    } catch (error) {
      throw new ApiError(0, [{ code: 'network-error', title: 'Network error', detail: `the server could not be reached (${error.message})`, traceId: '' }]);
    }
    this.noteBudget(response);
    if (response.ok) return response;
    const problems = await problemsOf(response);
    if (response.status === 401 && auth) this.onUnauthorized(problems);
    throw new ApiError(response.status, problems, { retryAfter: retryAfterOf(response) });
  }

  noteBudget(response) {
    const remaining = response.headers.get('x-ratelimit-remaining');
    if (remaining === null) return;
    this.budget = {
      limit: Number(response.headers.get('x-ratelimit-limit')),
      remaining: Number(remaining),
      resetAt: Number(response.headers.get('x-ratelimit-reset')) * 1000,
    };
  }

  /** OAuth2 client credentials: {accessToken, expiresIn} (seconds). */
  async signIn(clientId, clientSecret) {
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
    const response = await this.send(this.tokenPath, { method: 'POST', body, auth: false });
    const answer = await response.json();
    return { accessToken: answer.access_token, expiresIn: Number(answer.expires_in) };
  }

  /** The signed-in client: {clientId, name, advertiserIds, limits}. */
  async me() {
    return (await this.send(this.mePath)).json();
  }

  /**
   * Creates an export. `fresh` asks the API not to reuse a recent identical export
   * (Cache-Control: no-cache); a server that ignores it answers with the reused one.
   */
  async createExport(attributes, { fresh = false } = {}) {
    const headers = { 'Content-Type': 'application/json', 'X-MPO-Envelope': 'jsonapi' };
    if (fresh) headers['Cache-Control'] = 'no-cache';
    const body = JSON.stringify({ data: { type: 'RealTimeProductReportJob', attributes } });
    const response = await this.send(`${this.statsPath}/realtime-reports/export`, { method: 'POST', headers, body });
    const answer = await response.json();
    const job = answer.data.attributes;
    const age = Number(response.headers.get('age'));
    // X-MPO-Reused says whether an earlier identical export was answered; a server
    // without that header reuses too, and then answers Done at once.
    const reusedHeader = response.headers.get('x-mpo-reused');
    return {
      ...job,
      warnings: answer.warnings || [],
      reused: reusedHeader === null ? job.status === 'Done' : reusedHeader.toLowerCase() === 'true',
      ageSeconds: response.headers.has('age') && Number.isFinite(age) ? age : null,
    };
  }

  /** One poll: {exportId, status, message, retryAfter}. */
  async poll(exportId) {
    const response = await this.send(`${this.statsPath}/report-jobs/${encodeURIComponent(exportId)}`);
    return { ...(await response.json()), retryAfter: retryAfterOf(response) };
  }

  downloadPath(exportId) {
    return `${this.statsPath}/realtime-reports/${encodeURIComponent(exportId)}`;
  }

  /** The export's file as a Blob, with the file name the API gave it. */
  async downloadBlob(exportId) {
    const response = await this.send(this.downloadPath(exportId));
    const disposition = response.headers.get('content-disposition') || '';
    const match = /filename="?([^";]+)"?/.exec(disposition);
    return { blob: await response.blob(), filename: match ? match[1] : exportId };
  }
}
