// The execution's event history table (rows expand to their input, output and error) and the run
// summary of the workflow output.
import { formatDuration, formatTimestamp, h, jsonBlock } from './dom.js';

/** The moment elapsed times count from: the ExecutionStarted event, as in the console. */
export function startOf(view, events) {
  const started = events.find((event) => event.type === 'ExecutionStarted');
  return Date.parse(started?.timestamp ?? view.startDate);
}

function eventDetails(event) {
  const blocks = [];
  if (event.error || event.cause) {
    blocks.push(jsonBlock('Error', event.error ?? ''), jsonBlock('Cause', event.cause ?? ''));
  }
  if (event.input !== undefined) blocks.push(jsonBlock('Input', event.input));
  if (event.output !== undefined) blocks.push(jsonBlock('Output', event.output));
  if (event.retryAttempt !== undefined) blocks.push(jsonBlock('Retry attempt', String(event.retryAttempt)));
  return blocks;
}

/** The table with its header; rows are added by appendEvents() so a live run only adds what is new. */
export function eventTable() {
  const body = h('tbody', {});
  const table = h(
    'table',
    { class: 'events', id: 'event-history' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'ID'),
        h('th', {}, 'Type'),
        h('th', {}, 'Step'),
        h('th', {}, 'Iteration'),
        h('th', { class: 'num' }, 'Elapsed'),
        h('th', {}, 'Timestamp'),
      ),
    ),
    body,
  );
  return { table, body };
}

export function appendEvents(body, events, startedAt, stateFilter) {
  for (const event of events) {
    const expandable = eventDetails(event).length > 0;
    const failed = Boolean(event.error) || /Failed|TimedOut|Aborted/.test(event.type);
    const row = h(
      'tr',
      {
        class: `event-row${failed ? ' event-failed' : ''}${expandable ? ' expandable' : ''}`,
        'data-event-id': event.id,
        'data-type': event.type,
        'data-state': event.stateName ?? '',
        'aria-expanded': expandable ? 'false' : undefined,
        tabindex: expandable ? 0 : undefined,
      },
      h('td', { class: 'num' }, expandable ? h('span', { class: 'caret' }, '▸ ') : '', event.id),
      h('td', {}, event.type),
      h('td', {}, event.stateName ?? ''),
      h('td', { class: 'num' }, event.mapIterationIndex ?? ''),
      h('td', { class: 'num' }, formatDuration(Date.parse(event.timestamp) - startedAt)),
      h('td', { class: 'timestamp' }, formatTimestamp(event.timestamp)),
    );
    body.append(row);
    if (stateFilter && event.stateName !== stateFilter) row.hidden = true;
    if (!expandable) continue;
    // Details are built on first expansion: a long history stays cheap to render.
    let detailRow;
    const toggle = () => {
      if (!detailRow) {
        detailRow = h('tr', { class: 'event-details' }, h('td', { colspan: 6 }, ...eventDetails(event)));
        row.after(detailRow);
      } else detailRow.hidden = !detailRow.hidden;
      const open = !detailRow.hidden;
      row.setAttribute('aria-expanded', String(open));
      row.querySelector('.caret').textContent = open ? '▾ ' : '▸ ';
    };
    row.addEventListener('click', toggle);
    row.addEventListener('keydown', (key) => key.key === 'Enter' && toggle());
  }
}

/** Shows only the rows of one state (null shows all); an expanded detail row follows its event. */
export function filterEvents(body, stateName) {
  for (const row of body.querySelectorAll('tr.event-row')) {
    const visible = !stateName || row.dataset.state === stateName;
    row.hidden = !visible;
    const next = row.nextElementSibling;
    if (next?.classList.contains('event-details')) {
      next.hidden = !visible || row.getAttribute('aria-expanded') !== 'true';
    }
  }
}

const yesNo = (value) => (value === undefined ? '' : value ? 'yes' : 'no');
const ms = (value) => (value === undefined ? '' : `${Math.round(value)} ms`);

/** One row per collection: what the run did to it (CollectionSummary of the workflow output). */
export function runSummary(view) {
  if (view.summary.length === 0) {
    const why =
      view.status === 'RUNNING'
        ? 'Collections appear here as they publish.'
        : 'No collection reached its publish in this execution.';
    return h('p', { class: 'muted', id: 'run-summary' }, why);
  }
  const columns = [
    ['Collection', (c) => c.collection],
    ['Deltas', (c) => c.deltas],
    ['Records', (c) => c.records],
    ['Chunks', (c) => (c.chunkSize ? `${c.chunks} × ${c.chunkSize}` : c.chunks)],
    ['Intermediate merges', (c) => c.intermediateMerges],
    ['Short circuit', (c) => yesNo(c.shortCircuit)],
    [
      'Version',
      (c) =>
        c.status === 'failed'
          ? `not published: ${c.error?.name ?? 'error'}`
          : c.alreadyApplied
            ? `v${c.snapshotVersion} (already applied)`
            : `v${c.previousVersion} → v${c.snapshotVersion}`,
    ],
    ['Snapshot records', (c) => c.recordCount],
    ['Lock held', (c) => ms(c.lockHoldMs)],
    ['CAS retries', (c) => c.casRetries],
  ];
  return h(
    'table',
    { class: 'summary', id: 'run-summary' },
    h('thead', {}, h('tr', {}, ...columns.map(([title]) => h('th', {}, title)))),
    h(
      'tbody',
      {},
      ...view.summary.map((collection) =>
        h(
          'tr',
          { 'data-collection': collection.collection },
          ...columns.map(([, cell]) => h('td', {}, cell(collection) ?? '')),
        ),
      ),
    ),
  );
}
