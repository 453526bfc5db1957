// The console page: `/` lists executions, `/executions/<id>` shows one (graph, summary, history) and
// follows it live over Server-Sent Events while it runs.
import { formatDuration, formatTimestamp, h, STATUS_LABELS, statusBadge } from './dom.js';
import { annotate, layoutDefinition, paintGraph, renderGraph } from './graph.js';
import { appendEvents, eventTable, filterEvents, runSummary, startOf } from './history.js';
import { zoomableGraph } from './zoom.js';

const app = document.getElementById('app');
const LIST_REFRESH_MS = 2000;

async function getJson(url) {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, body };
}

function showMessage(title, text, kind) {
  document.title = `${title} · embedflow console`;
  app.replaceChildren(
    h(
      'section',
      { class: 'not-found', 'data-view': kind },
      h('h1', {}, title),
      h('p', {}, text),
      h('p', {}, h('a', { href: '/' }, 'Back to all executions')),
    ),
  );
}

const liveDuration = (item, now) => item.durationMs ?? now - Date.parse(item.startDate);

function executionRow(item, now) {
  return h(
    'tr',
    { 'data-execution-id': item.executionId, 'data-status': item.status },
    h(
      'td',
      {},
      h('a', { href: `/executions/${encodeURIComponent(item.executionId)}` }, item.name ?? item.executionId),
    ),
    h('td', {}, statusBadge(item.status)),
    h('td', {}, item.runId ?? ''),
    h('td', {}, item.collections.join(', ')),
    h('td', { class: 'timestamp' }, formatTimestamp(item.startDate)),
    h('td', { class: 'num' }, formatDuration(liveDuration(item, now))),
    h(
      'td',
      { class: 'error-cell', title: item.error ? `${item.error.name}: ${item.error.message}` : undefined },
      item.error ? h('strong', {}, item.error.name, ': ') : '',
      item.error ? item.error.message : '',
    ),
  );
}

async function showList() {
  document.title = 'Executions · embedflow console';
  const body = h('tbody', {});
  const count = h('span', { class: 'muted' }, '');
  app.replaceChildren(
    h('section', { 'data-view': 'list' }, h('h1', {}, 'Executions ', count)),
    h(
      'table',
      { class: 'executions', id: 'executions' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Name', 'Status', 'Run id', 'Collections', 'Started', 'Duration', 'Error'].map((t) =>
            h('th', {}, t),
          ),
        ),
      ),
      body,
    ),
  );
  // Polling is enough here: the list is small, and new runs appear without a reload.
  for (;;) {
    const { ok, body: data } = await getJson('/api/executions');
    if (ok) {
      document.getElementById('source').textContent = data.source;
      count.textContent = `(${data.executions.length})`;
      const now = Date.now();
      body.replaceChildren(
        ...(data.executions.length === 0
          ? [
              h(
                'tr',
                {},
                h('td', { colspan: 7, class: 'muted' }, 'No executions yet: try `embedflow run --demo`.'),
              ),
            ]
          : data.executions.map((item) => executionRow(item, now))),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, LIST_REFRESH_MS));
  }
}

function executionHeader(view, now) {
  const fact = (label, value) => h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, value || '–'));
  return h(
    'section',
    { class: 'execution-header', 'data-status': view.status },
    h('nav', { class: 'crumbs' }, h('a', { href: '/' }, 'Executions'), ' › ', view.name ?? view.executionId),
    h('h1', {}, view.name ?? view.executionId, ' ', statusBadge(view.status)),
    h(
      'dl',
      { class: 'facts' },
      fact('Run id', view.runId),
      fact('Collections', view.collections.join(', ')),
      fact('Started', formatTimestamp(view.startDate)),
      fact('Stopped', formatTimestamp(view.stopDate)),
      fact('Duration', formatDuration(liveDuration(view, now))),
    ),
    view.error
      ? h(
          'div',
          { class: 'error-banner', id: 'execution-error', role: 'alert' },
          h('strong', {}, view.error.name),
          h('span', { class: 'cause' }, view.error.message),
        )
      : '',
  );
}

/** With nothing selected, the states that failed come first: that is what a reader looks for. */
function failedStates(view, select) {
  const failed = Object.entries(view.states).filter(([, progress]) => progress.status === 'failed');
  if (failed.length === 0) return '';
  return h(
    'div',
    { class: 'failed-states' },
    h('h3', {}, 'Failed states'),
    ...failed.map(([state, progress]) =>
      h(
        'div',
        { class: 'failed-state', 'data-failed-state': state },
        h('button', { type: 'button', class: 'link', onclick: () => select(state) }, state),
        progress.lastError
          ? h('div', { class: 'cause' }, progress.lastError.error, ': ', progress.lastError.cause)
          : '',
      ),
    ),
  );
}

function stateDetails(name, view, definitionTypes, select) {
  if (!name) {
    return h(
      'div',
      {},
      failedStates(view, select),
      h('p', { class: 'muted' }, 'Select a state in the graph to see its details and only its events.'),
    );
  }
  const progress = view.states[name];
  const status = progress?.status ?? 'not-started';
  const iterations = view.mapIterations[name];
  const row = (label, value) =>
    value === undefined || value === '' ? '' : h('tr', {}, h('th', {}, label), h('td', {}, value));
  return h(
    'div',
    { 'data-selected-state': name },
    h('h3', {}, name, ' ', statusBadge(status)),
    h(
      'table',
      { class: 'state-facts' },
      row('Type', definitionTypes.get(name)),
      row('Entered', progress?.visits ? `${progress.visits}×` : ''),
      row('Retries', progress?.retries || ''),
      row('Activity', annotate(progress, undefined, Date.now())),
      row(
        'Iterations',
        iterations &&
          `${iterations.done} done, ${iterations.failed} failed, ${iterations.aborted} aborted, ${iterations.running} running, ${iterations.total} total`,
      ),
      row('Error', progress?.lastError?.error),
      row('Cause', progress?.lastError?.cause),
    ),
  );
}

function definitionTypesOf(definition) {
  const types = new Map();
  const visit = (machine) => {
    for (const [name, state] of Object.entries(machine.States)) {
      types.set(name, state.Type);
      for (const child of [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])])
        if (child) visit(child);
    }
  };
  visit(definition);
  return types;
}

function legend() {
  const statuses = ['succeeded', 'failed', 'caught', 'running', 'cancelled', 'not-started'];
  return h(
    'ul',
    { class: 'legend' },
    ...statuses.map((status) =>
      h('li', { 'data-status': status }, h('span', { class: 'swatch' }), STATUS_LABELS[status]),
    ),
  );
}

async function showExecution(executionId) {
  const [loaded, definitionResponse] = await Promise.all([
    getJson(`/api/executions/${encodeURIComponent(executionId)}`),
    getJson('/api/definition'),
  ]);
  if (loaded.status === 404) return showMessage('Execution not found', loaded.body.message, 'not-found');
  if (!loaded.ok || !definitionResponse.ok) {
    return showMessage(
      'Could not load the execution',
      loaded.body.message ?? `HTTP ${loaded.status}`,
      'error',
    );
  }
  document.getElementById('source').textContent = loaded.body.source;
  document.title = `${executionId} · embedflow console`;
  let view = loaded.body.execution;
  const definition = definitionResponse.body;
  const types = definitionTypesOf(definition);
  const events = [...view.events];
  let selected = null;

  const header = h('div', {});
  const summary = h('div', {});
  const details = h('aside', { class: 'state-details' });
  const filterNote = h('span', { class: 'filter-note' });
  const { table, body } = eventTable();
  const select = (name) => {
    selected = name === selected ? null : name;
    for (const [state, handle] of handles) handle.group?.toggleAttribute('data-selected', state === selected);
    details.replaceChildren(stateDetails(selected, view, types, select));
    filterEvents(body, selected);
    filterNote.replaceChildren(
      selected
        ? h(
            'span',
            {},
            `only ${selected} `,
            h('button', { type: 'button', onclick: () => select(selected) }, 'show all'),
          )
        : '',
    );
  };
  const layout = layoutDefinition(definition);
  const { svg, handles } = renderGraph(layout, select);
  const graph = zoomableGraph(svg, layout.graph().width, layout.graph().height);

  const repaint = () => {
    const now = Date.now();
    header.replaceChildren(executionHeader(view, now));
    paintGraph(handles, view, now);
    summary.replaceChildren(runSummary(view));
    details.replaceChildren(stateDetails(selected, view, types, select));
  };
  app.replaceChildren(
    h('section', { 'data-view': 'execution', 'data-execution-id': view.executionId }, header),
    h('section', {}, h('h2', {}, 'Run summary'), summary),
    h(
      'section',
      { class: 'graph-and-details' },
      h(
        'div',
        { class: 'graph-panel' },
        h('div', { class: 'graph-heading' }, h('h2', {}, 'Graph view'), graph.toolbar),
        legend(),
        graph.viewport,
      ),
      h('div', { class: 'side-panel' }, h('h2', {}, 'Step details'), details),
    ),
    h('section', {}, h('h2', {}, 'Event history ', filterNote), table),
  );
  appendEvents(body, events, startOf(view, events), selected);
  repaint();
  if (view.status !== 'RUNNING') return;
  follow(view.executionId, events.at(-1)?.id ?? 0, {
    onUpdate(update) {
      const fresh = update.events.filter((event) => event.id > (events.at(-1)?.id ?? 0));
      events.push(...fresh);
      view = { ...update, events };
      appendEvents(body, fresh, startOf(view, events), selected);
      repaint();
    },
    onTick: repaint,
    onGone: () =>
      showMessage('Execution not found', `Execution ${executionId} is no longer there.`, 'not-found'),
  });
}

/** Feeds the server's updates (new events, re-derived statuses) to the view until the run stops. */
function follow(executionId, lastEventId, { onUpdate, onTick, onGone }) {
  const url = `/api/executions/${encodeURIComponent(executionId)}/stream?after=${lastEventId}`;
  const stream = new EventSource(url);
  // Running states show a growing duration between updates.
  const ticker = setInterval(onTick, 1000);
  const stop = () => {
    stream.close();
    clearInterval(ticker);
  };
  stream.addEventListener('update', (message) => onUpdate(JSON.parse(message.data)));
  stream.addEventListener('end', () => {
    stop();
    onTick();
  });
  stream.addEventListener('gone', () => {
    stop();
    onGone();
  });
}

const executionMatch = /^\/executions\/([^/]+)$/.exec(location.pathname);
if (executionMatch) showExecution(decodeURIComponent(executionMatch[1]));
else showList();
