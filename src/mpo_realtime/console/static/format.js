// Small helpers shared by the console's modules: building elements (always through
// textContent, never HTML strings), and formatting numbers, sizes and durations.

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** A new element with attributes and children; strings become text nodes. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === 'className') node.className = value;
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** Shows or hides an element (the `hidden` attribute, styled by the stylesheet). */
export function show(node, visible = true) {
  node.hidden = !visible;
}

/** A count as the browser's locale writes it; text that is not a safe integer as is. */
export function formatCount(text) {
  const value = Number(text);
  return Number.isSafeInteger(value) ? integer.format(value) : String(text);
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '';
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB'];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1000;
    unit += 1;
  } while (value >= 1000 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** "35 s", "4 min", "2 h 5 min": how long ago, for ages shown every second. */
export function formatAge(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatClock(date) {
  return date.toLocaleTimeString(undefined, { hour12: false });
}

/**
 * Text for the chart library, which reads a few HTML tags and entities in labels:
 * escaping makes every value show as the characters it is (`<img …>` stays text).
 */
export function chartText(text, limit = 0) {
  let value = String(text);
  if (limit && value.length > limit) value = `${value.slice(0, limit - 1)}…`;
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
