// Small DOM and formatting helpers shared by the console's views. Elements are built with
// textContent, never innerHTML, so nothing from an execution's payloads is ever parsed as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h('td', { class: 'x' }, 'text', otherElement). */
export function h(tag, attributes, ...children) {
  return build(document.createElement(tag), attributes, children);
}

/** An SVG element, same call shape as h(). */
export function s(tag, attributes, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attributes, children);
}

/** 850 ms, 4.2 s, 3 min 05 s. */
export function formatDuration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
}

/** Local date and time with milliseconds, like the Step Functions console's timestamps. */
export function formatTimestamp(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const time = date.toLocaleTimeString(undefined, { hour12: false });
  return `${date.toLocaleDateString()} ${time}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

export const STATUS_LABELS = {
  RUNNING: 'Running',
  SUCCEEDED: 'Succeeded',
  FAILED: 'Failed',
  TIMED_OUT: 'Timed out',
  ABORTED: 'Aborted',
  PENDING_REDRIVE: 'Pending redrive',
  'not-started': 'Not started',
  running: 'In progress',
  succeeded: 'Succeeded',
  failed: 'Failed',
  caught: 'Caught error',
  cancelled: 'Cancelled',
};

export function statusBadge(status) {
  return h(
    'span',
    { class: `badge badge-${String(status).toLowerCase()}`, 'data-status': status },
    STATUS_LABELS[status] ?? status,
  );
}

/** Pretty JSON for an expanded event or state detail. */
export function jsonBlock(title, value) {
  return h(
    'div',
    { class: 'json-block' },
    h('div', { class: 'json-title' }, title),
    h('pre', {}, typeof value === 'string' ? value : JSON.stringify(value, null, 2)),
  );
}
