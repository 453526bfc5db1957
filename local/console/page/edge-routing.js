// Corrections to dagre's edge routes, applied after its layout (graph.js).

/** Where the line from a node's centre towards `point` leaves the node's rectangle. */
function boundaryPoint(node, point) {
  const dx = point.x - node.x;
  const dy = point.y - node.y;
  if (dx === 0 && dy === 0) return { x: node.x, y: node.y };
  const scale = Math.min(
    dx === 0 ? Number.POSITIVE_INFINITY : node.width / 2 / Math.abs(dx),
    dy === 0 ? Number.POSITIVE_INFINITY : node.height / 2 / Math.abs(dy),
  );
  return { x: node.x + dx * scale, y: node.y + dy * scale };
}

/**
 * dagre orders the rows between ranks by a crossing heuristic that can hand a Choice's edges each
 * other's slots: the edge to the left target then leaves to the right, crosses its sibling, and
 * each label sits on the wrong edge. Within every row the Choice's edges share, the slots are given
 * back in the order of the edges' targets (left target, left slot), labels moving with their edge;
 * the ends are then re-attached to the nodes' borders.
 */
export function untangleChoiceEdges(graph) {
  const bySource = new Map();
  for (const id of graph.edges()) {
    const edge = graph.edge(id);
    if (edge.kind !== 'choice') continue;
    bySource.set(id.v, [...(bySource.get(id.v) ?? []), { id, edge }]);
  }
  for (const [source, edges] of bySource) {
    if (edges.length < 2) continue;
    const target = ({ edge }) => edge.points[edge.points.length - 1].x;
    edges.sort((a, b) => target(a) - target(b));
    const rows = (edge) => new Set(edge.points.slice(1, -1).map((point) => point.y));
    const shared = [...rows(edges[0].edge)].filter((y) => edges.every(({ edge }) => rows(edge).has(y)));
    for (const y of shared) {
      const atRow = edges.map(({ edge }) => edge.points.find((point, i) => i > 0 && point.y === y));
      const slots = atRow.map((point) => point.x).sort((a, b) => a - b);
      edges.forEach(({ edge }, index) => {
        if (edge.label && edge.y === y && edge.x === atRow[index].x) edge.x = slots[index];
        atRow[index].x = slots[index];
      });
    }
    for (const { id, edge } of edges) {
      const { points } = edge;
      points[0] = boundaryPoint(graph.node(source), points[1]);
      points[points.length - 1] = boundaryPoint(graph.node(id.w), points[points.length - 2]);
    }
  }
}
