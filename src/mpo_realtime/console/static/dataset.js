// The page's side of data-worker.js: each call is a message, each answer a promise.

export class Dataset {
  constructor(workerUrl) {
    this.worker = new Worker(workerUrl);
    this.pending = new Map();
    this.next = 1;
    this.worker.onmessage = ({ data }) => {
      const call = this.pending.get(data.id);
      if (!call) return;
      this.pending.delete(data.id);
      if (data.error) call.reject(new Error(data.error));
      else call.resolve(data.result);
    };
  }

  call(op, args = {}) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...args, op, id });
    });
  }

  /** Downloads and reads an export; answers its summary, or {failed} with the API's answer. */
  load(url, token, keep) {
    return this.call('load', { url, token, keep });
  }

  page(column, descending, offset, limit) {
    return this.call('page', { column, descending, offset, limit });
  }

  chart(metric) {
    return this.call('chart', { metric });
  }

  forget() {
    return this.call('forget');
  }
}
