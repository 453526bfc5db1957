// The state machine graph: the ASL definition laid out by dagre (loaded as the `dagre` global from
// node_modules) and drawn as SVG. A Map or Parallel state is a cluster that holds its own node (the
// header, annotated with iterations), its inner states and a small join node its transitions leave
// from, so the layout reads top to bottom like the Step Functions console.
import { formatDuration, STATUS_LABELS, s } from './dom.js';
import { untangleChoiceEdges } from './edge-routing.js';

const NODE_HEIGHT = 50;
const CHAR_WIDTH = 7.4; // average width of a 13px sans-serif character: nodes fit their names
const COMPARISONS = {
  NumericEquals: '==',
  NumericGreaterThan: '>',
  NumericGreaterThanEquals: '>=',
  NumericLessThan: '<',
  NumericLessThanEquals: '<=',
  StringEquals: '==',
  BooleanEquals: '==',
  IsPresent: 'present',
};

function describeChoice(choice) {
  const comparison = Object.keys(choice).find((key) => key !== 'Variable' && key !== 'Next');
  if (!choice.Variable || !comparison) return 'rule';
  const operator = COMPARISONS[comparison] ?? comparison;
  const text = `${choice.Variable.replace(/^\$\./, '')} ${operator} ${JSON.stringify(choice[comparison])}`;
  return text.length > 28 ? `${text.slice(0, 27)}…` : text;
}

/** Where a state can go next: [target or null for "end of this machine", label, kind]. */
function transitions(state) {
  const out = [];
  if (state.Type === 'Choice') {
    for (const choice of state.Choices ?? []) out.push([choice.Next, describeChoice(choice), 'choice']);
    if (state.Default) out.push([state.Default, 'Default', 'choice']);
  } else if (state.Next) out.push([state.Next, '', 'next']);
  else if (state.End || state.Type === 'Succeed') out.push([null, '', 'next']);
  for (const catcher of state.Catch ?? []) {
    // A Catch that goes where Next goes would be drawn on top of it: one edge, labelled, says both.
    const same = out.find(([target, , kind]) => kind === 'next' && target === catcher.Next);
    if (same) same[1] = 'also on Catch';
    else out.push([catcher.Next, 'Catch', 'catch']);
  }
  return out;
}

function addEdge(graph, from, to, label, kind) {
  // A Choice's edges span two ranks: their labels then sit between rows, clear of the edges that
  // converge on the same target from further up (a Map's Catch, say).
  const edge = { kind, label, minlen: kind === 'choice' ? 2 : 1 };
  if (label) Object.assign(edge, { width: label.length * 6.4 + 8, height: 16, labelpos: 'c' });
  graph.setEdge(from, to, edge, `${kind}:${from}->${to}:${label}`);
}

/** Adds a machine's states; returns the node each state's transitions leave from. */
function addMachine(graph, machine, cluster, endNode) {
  const leaveNodes = [];
  for (const [name, state] of Object.entries(machine.States)) {
    const inner = state.ItemProcessor ?? state.Iterator;
    const isGroup = Boolean(inner || state.Branches);
    const width = Math.max(isGroup ? 220 : 150, name.length * CHAR_WIDTH + 36);
    graph.setNode(name, { kind: 'state', name, type: state.Type, width, height: NODE_HEIGHT });
    let leaveFrom = name;
    if (isGroup) {
      const groupId = `cluster:${name}`;
      graph.setNode(groupId, { kind: 'cluster', name });
      if (cluster) graph.setParent(groupId, cluster);
      graph.setParent(name, groupId);
      leaveFrom = `join:${name}`;
      graph.setNode(leaveFrom, { kind: 'join', name, width: 14, height: 14 });
      graph.setParent(leaveFrom, groupId);
      for (const child of inner ? [inner] : state.Branches) {
        addEdge(graph, name, child.StartAt, '', 'next');
        // Undrawn edges rank the join below every inner state (a loop inside, like GroupSegments
        // ⇄ IntermediateMerges, would otherwise hang below it and push the next state sideways).
        for (const innerNode of addMachine(graph, child, groupId, leaveFrom)) {
          if (!graph.outEdges(innerNode, leaveFrom)?.length)
            addEdge(graph, innerNode, leaveFrom, '', 'invisible');
        }
      }
    } else if (cluster) graph.setParent(name, cluster);
    for (const [target, label, kind] of transitions(state)) {
      addEdge(graph, leaveFrom, target ?? endNode, label, kind);
    }
    leaveNodes.push(leaveFrom);
  }
  return leaveNodes;
}

/** Runs dagre on the definition; the returned graph carries every node's and edge's coordinates. */
export function layoutDefinition(definition) {
  const graph = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  graph.setGraph({ rankdir: 'TB', nodesep: 26, ranksep: 34, edgesep: 14, marginx: 12, marginy: 12 });
  graph.setDefaultEdgeLabel(() => ({}));
  graph.setNode('start', { kind: 'terminal', name: 'Start', width: 64, height: 28 });
  graph.setNode('end', { kind: 'terminal', name: 'End', width: 64, height: 28 });
  addEdge(graph, 'start', definition.StartAt, '', 'next');
  addMachine(graph, definition, undefined, 'end');
  dagre.layout(graph);
  untangleChoiceEdges(graph);
  return graph;
}

function edgeEnd(graph, id) {
  const node = graph.node(id);
  return node.kind === 'join' ? `join:${node.name}` : node.name;
}

function depth(graph, id) {
  let levels = 0;
  for (let parent = graph.parent(id); parent; parent = graph.parent(parent)) levels++;
  return levels;
}

/** A polyline through dagre's points with its corners rounded by quadratic curves. */
function edgePath(points) {
  let path = `M ${points[0].x} ${points[0].y}`;
  for (let i = 1; i < points.length - 1; i++) {
    const corner = points[i];
    const next = points[i + 1];
    path += ` Q ${corner.x} ${corner.y} ${(corner.x + next.x) / 2} ${(corner.y + next.y) / 2}`;
  }
  const last = points[points.length - 1];
  return `${path} L ${last.x} ${last.y}`;
}

/**
 * Draws the laid-out graph. Returns the SVG and a handle per state for paintGraph(); clicking a
 * state calls onSelect(stateName).
 */
export function renderGraph(graph, onSelect) {
  const { width, height } = graph.graph();
  const svg = s('svg', {
    class: 'state-graph',
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': 'State machine graph',
  });
  svg.append(
    s(
      'defs',
      {},
      s(
        'marker',
        {
          id: 'arrow',
          viewBox: '0 0 10 10',
          refX: 9,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: 'auto',
        },
        s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow-head' }),
      ),
    ),
  );
  const handles = new Map();
  const nodes = graph.nodes().map((id) => ({ id, ...graph.node(id) }));
  const clusters = nodes.filter((node) => node.kind === 'cluster');
  clusters.sort((a, b) => depth(graph, a.id) - depth(graph, b.id));
  for (const cluster of clusters) {
    const rect = s('rect', {
      class: 'cluster',
      'data-cluster': cluster.name,
      x: cluster.x - cluster.width / 2,
      y: cluster.y - cluster.height / 2,
      width: cluster.width,
      height: cluster.height,
      rx: 10,
    });
    svg.append(rect);
    handles.set(cluster.name, { cluster: rect });
  }
  for (const edgeId of graph.edges()) {
    const edge = graph.edge(edgeId);
    if (edge.kind === 'invisible') continue;
    // The ends name the states (the join of a Map or Parallel is named after it): tests and readers
    // can tell which edge is which.
    const ends = { 'data-from': edgeEnd(graph, edgeId.v), 'data-to': edgeEnd(graph, edgeId.w) };
    svg.append(
      s('path', {
        class: `edge edge-${edge.kind}`,
        d: edgePath(edge.points),
        'marker-end': 'url(#arrow)',
        ...ends,
      }),
    );
    if (edge.label) {
      svg.append(
        s('rect', {
          class: 'edge-label-bg',
          ...ends,
          x: edge.x - edge.width / 2,
          y: edge.y - 8,
          width: edge.width,
          height: 16,
          rx: 3,
        }),
        s('text', { class: `edge-label edge-label-${edge.kind}`, x: edge.x, y: edge.y + 4 }, edge.label),
      );
    }
  }
  for (const node of nodes) {
    const at = { transform: `translate(${node.x - node.width / 2}, ${node.y - node.height / 2})` };
    if (node.kind === 'terminal') {
      svg.append(
        s(
          'g',
          { class: 'terminal', ...at },
          s('rect', { width: node.width, height: node.height, rx: node.height / 2 }),
          s('text', { x: node.width / 2, y: node.height / 2 + 4 }, node.name),
        ),
      );
    } else if (node.kind === 'join') {
      const dot = s('circle', { class: 'join', 'data-join': node.name, cx: node.x, cy: node.y, r: 6 });
      svg.append(dot);
      handles.get(node.name).join = dot;
    } else if (node.kind === 'state') {
      const title = s('title', {}, node.name);
      const annotation = s('text', { class: 'annotation', x: node.width / 2, y: 36 }, '');
      const label = s('text', { class: 'state-name', x: node.width / 2, y: 29 }, node.name);
      const group = s(
        'g',
        {
          class: 'state',
          'data-state': node.name,
          'data-type': node.type,
          'data-status': 'not-started',
          tabindex: 0,
          ...at,
        },
        title,
        s('rect', { width: node.width, height: node.height, rx: 6 }),
        label,
        annotation,
      );
      group.addEventListener('click', () => onSelect(node.name));
      group.addEventListener('keydown', (event) => event.key === 'Enter' && onSelect(node.name));
      svg.append(group);
      handles.set(node.name, {
        ...handles.get(node.name),
        group,
        name: label,
        annotation,
        title,
        type: node.type,
      });
    }
  }
  return { svg, handles };
}

/** "1/3 done · 1 failed · 1 aborted · 0.38 s" for a Map, "1.39 s" or "2 runs · 0.38 s" otherwise. */
export function annotate(progress, iterations, now) {
  if (!progress) return '';
  // A state still in flight counts up to now; a Fail state (or a cancelled one) never left: no time.
  const until = progress.status === 'running' ? now : progress.lastLeftAt && Date.parse(progress.lastLeftAt);
  const took =
    progress.firstEnteredAt && until ? formatDuration(until - Date.parse(progress.firstEnteredAt)) : '';
  const parts = [];
  if (iterations) {
    parts.push(`${iterations.done}/${iterations.total} done`);
    if (iterations.failed > 0) parts.push(`${iterations.failed} failed`);
    if (iterations.aborted > 0) parts.push(`${iterations.aborted} aborted`);
  } else if (progress.visits > 1) parts.push(`${progress.visits} runs`);
  if (progress.retries > 0) parts.push(`${progress.retries} retries`);
  if (took) parts.push(took);
  return parts.join(' · ');
}

/** Colours every state by its status and writes its annotation; cheap enough for every live update. */
export function paintGraph(handles, view, now = Date.now()) {
  for (const [name, handle] of handles) {
    const progress = view.states[name];
    const status = progress?.status ?? 'not-started';
    const iterations = view.mapIterations[name];
    if (handle.group) {
      handle.group.setAttribute('data-status', status);
      handle.annotation.textContent = annotate(progress, iterations, now);
      // The name sits in the middle of a node that has no annotation (yet).
      handle.name.setAttribute('y', handle.annotation.textContent ? 20 : 29);
      handle.title.textContent = `${name} (${handle.type}): ${STATUS_LABELS[status]}`;
    }
    handle.cluster?.setAttribute('data-status', status);
    handle.join?.setAttribute('data-status', status);
  }
}
