// A model's graph as an arc diagram: one row per node in the engine's
// topological order (id, type, output shape), an arc on the left from each
// input to the node that reads it, cut nodes (every path from the input to
// the output crosses them) drawn filled. A chain is a straight line. Clicking
// a row picks that node.
const SVG = 'http://www.w3.org/2000/svg';
const ROW = 18;
const LANE = 7;

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// nodes: [{index, id, inputs: [ids, "input"], cut, description, output_shape}].
export function drawGraph(svg, nodes, { selected, onPick }) {
  svg.replaceChildren();
  const rowOf = new Map([['input', 0]]);
  nodes.forEach((n, i) => rowOf.set(n.id, i + 1));
  // Arcs that skip rows need room on the left: the longest skip sets the margin.
  let widest = 0;
  for (const n of nodes) for (const from of n.inputs) widest = Math.max(widest, rowOf.get(n.id) - rowOf.get(from));
  const left = 14 + Math.min(widest, 24) * LANE;
  const height = (nodes.length + 1) * ROW + 6;
  svg.setAttribute('viewBox', `0 0 520 ${height}`);
  svg.setAttribute('height', String(height));
  const y = (row) => row * ROW + ROW / 2 + 2;
  for (const n of nodes) {
    for (const from of n.inputs) {
      const a = rowOf.get(from), b = rowOf.get(n.id);
      const bend = left - Math.min(b - a, 24) * LANE;
      const d = b - a === 1 ? `M ${left} ${y(a)} L ${left} ${y(b)}` : `M ${left} ${y(a)} C ${bend} ${y(a)}, ${bend} ${y(b)}, ${left} ${y(b)}`;
      svg.append(el('path', { d, class: 'graph-edge' }));
    }
  }
  svg.append(el('circle', { cx: left, cy: y(0), r: 4, class: 'graph-node cut' }));
  svg.append(el('text', { x: left + 10, y: y(0) + 4, class: 'graph-label' }, 'input'));
  for (const n of nodes) {
    const row = rowOf.get(n.id);
    const g = el('g', { class: `graph-row${String(n.index) === String(selected) ? ' selected' : ''}`, 'data-node': n.id, 'data-testid': `graph-node-${n.index}` });
    g.append(el('rect', { x: left - 8, y: row * ROW + 2, width: 520 - left + 8, height: ROW, class: 'graph-hit' }));
    g.append(el('circle', { cx: left, cy: y(row), r: 4, class: `graph-node${n.cut ? ' cut' : ''}` }));
    const type = n.description.split(' ')[0];
    g.append(el('text', { x: left + 10, y: y(row) + 4, class: 'graph-label' }, `${n.id}: ${type} → ${n.output_shape.join('×')}${n.cut ? '' : '  (bypassed)'}`));
    g.addEventListener('click', () => onPick(n.index));
    svg.append(g);
  }
}
