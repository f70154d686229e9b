// The layer/channel view: layer conductance (how much of IG flows through
// each channel of a chosen node of the model's graph) for the page's current
// input, class, output and baseline, with the node's completeness: the sum
// of the conductances against F(x) - F(x'), which holds only at a cut (a
// node every path from the input to the output crosses). The graph is drawn
// beside the list. Computes only while the view is open.
import { drawGraph } from './graph-diagram.js';
import { drawSignedBars, formatSigned, showValue } from './signed-bars.js';
import { parseResult } from './engine-client.js';

const PATH_METHODS = new Set(['ig', 'smoothgrad_ig', 'guidedig', 'blurig']);

// The conductance request from the page's attribution request: the same
// class, output and baseline; the path's steps and quadrature when the page
// integrates along one (32 Gauss-Legendre steps otherwise); a black
// baseline for methods without one.
export function conductanceRequest(request, layer) {
  const out = { layer, target: request.target, output: request.output, baseline: request.baseline || 'black' };
  out.steps = PATH_METHODS.has(request.method) ? request.steps : 32;
  out.quadrature = request.quadrature || 'gausslegendre';
  if (request.seed !== undefined) out.seed = request.seed;
  return out;
}

export class LayerView {
  constructor({ root, client, onError }) {
    this.root = root;
    this.client = client;
    this.onError = onError;
    this.layers = [];
    this.pending = null;
    const body = document.createElement('div');
    body.innerHTML = `
      <p class="muted">Conductance (Dhamdhere, Yan &amp; Sundararajan 2018) splits IG by the chain rule at a hidden
      node. Where every path from the input to F crosses the node (a cut, filled in the graph), its conductances sum
      to F(x) − F(x′) up to the quadrature error; where paths bypass it (inside a residual block), the sum is only the
      share of the change that flows through it. Same input, class, output and baseline as above; per channel (summed
      over positions), or per unit of a dense layer.</p>
      <label>node <select data-testid="layer-select"></select></label>
      <div class="graph-box"><svg data-testid="layer-graph" class="graph" width="520"></svg></div>
      <div data-testid="layer-caption" class="muted"></div>
      <table class="numbers">
        <tr><th>a cut of the graph (completeness applies)</th><td data-testid="layer-cut"></td></tr>
        <tr><th>F(x), the input</th><td data-testid="layer-f-input"></td></tr>
        <tr><th>F(x′), the baseline</th><td data-testid="layer-f-baseline"></td></tr>
        <tr><th>sum of the node's conductances</th><td data-testid="layer-sum"></td></tr>
        <tr><th>completeness gap at the node, Σ − (F(x) − F(x′))</th><td data-testid="layer-gap"></td></tr>
        <tr><th>gap, % of |F(x) − F(x′)|</th><td data-testid="layer-gap-percent"></td></tr>
        <tr><th>time</th><td data-testid="layer-timing"></td></tr>
      </table>
      <div data-testid="layer-bars" class="sbars scroll"></div>`;
    root.append(body);
    this.select = body.querySelector('[data-testid="layer-select"]');
    this.graph = body.querySelector('[data-testid="layer-graph"]');
    this.bars = body.querySelector('[data-testid="layer-bars"]');
    this.field = (name) => body.querySelector(`[data-testid="layer-${name}"]`);
    this.select.addEventListener('input', () => {
      this.drawGraph();
      this.run();
    });
    root.addEventListener('toggle', () => this.run());
    this.lane = client.lane((msg) => {
      if (msg.type === 'conductance') this.receive(msg.id, msg.text);
    });
  }

  // The model's nodes ({index, id, inputs, cut, description, output_shape});
  // the default is the last max-pool node (else the middle cut).
  setLayers(layers) {
    const previous = this.select.value;
    this.layers = layers;
    this.select.replaceChildren();
    for (const l of layers) {
      const opt = document.createElement('option');
      opt.value = String(l.index);
      const name = l.id === String(l.index) ? '' : ` ${l.id}`;
      opt.textContent = `${l.index}:${name} ${l.description} → ${l.output_shape.join('×')}${l.cut ? '' : ' (not a cut)'}`;
      this.select.append(opt);
    }
    const pools = layers.filter((l) => l.description.startsWith('maxpool'));
    const cuts = layers.filter((l) => l.cut);
    const fallback = pools.length ? pools[pools.length - 1].index : cuts[Math.floor(cuts.length / 2)].index;
    this.select.value = layers.some((l) => String(l.index) === previous) ? previous : String(fallback);
    this.drawGraph();
  }

  drawGraph() {
    drawGraph(this.graph, this.layers, {
      selected: this.select.value,
      onPick: (index) => {
        this.select.value = String(index);
        this.drawGraph();
        this.run();
      },
    });
  }

  // The page's current input and attribution request.
  update(input, request) {
    this.pending = { input, request };
    this.run();
  }

  run() {
    if (!this.root.open || !this.pending || !this.layers.length) return;
    const request = conductanceRequest(this.pending.request, Number(this.select.value));
    this.root.dataset.state = 'computing';
    const id = this.lane.request('conductance', { input: this.pending.input, request });
    this.root.dataset.requestId = String(id);
  }

  receive(id, text) {
    const r = parseResult(text);
    if (r.cancelled) return;
    this.root.dataset.resultId = String(id);
    if (r.error) {
      this.root.dataset.state = 'error';
      this.onError(`The layer conductance failed: ${r.error}`);
      return;
    }
    this.result = r;
    const set = (name, value, text) => showValue(this.field(name), value, text);
    const span = Math.abs(r.f_input - r.f_baseline);
    set('f-input', r.f_input, r.f_input.toFixed(4));
    set('f-baseline', r.f_baseline, r.f_baseline.toFixed(4));
    set('sum', r.sum, r.sum.toFixed(4));
    this.field('cut').textContent = r.cut ? 'yes' : 'no: paths from the input to the output bypass this node';
    if (r.cut) {
      set('gap', r.gap, r.gap.toExponential(3));
      set('gap-percent', span ? (100 * Math.abs(r.gap)) / span : null, span ? `${((100 * Math.abs(r.gap)) / span).toFixed(3)}%` : '–');
    } else {
      set('gap', null, '– (completeness does not apply: not a cut)');
      set('gap-percent', null, '–');
    }
    set('timing', r.milliseconds, `${r.milliseconds.toFixed(1)} ms for ${r.evaluations} path points`);
    const dense = r.unit_shape.length === 1;
    const name = r.node_id === String(r.layer) ? '' : ` ${r.node_id}`;
    this.field('caption').textContent = `node ${r.layer}${name} (${r.layer_description}), class “${r.target_name}”, baseline ${r.baseline}, ${r.steps} steps: ${r.channels.length} ${dense ? 'units' : 'channels'}`;
    drawSignedBars(
      this.bars,
      r.channels.map((v, k) => ({ label: `${dense ? 'unit' : 'channel'} ${k}`, value: v, title: formatSigned(v, 6) })),
      { testid: 'channel' },
    );
    this.root.dataset.state = 'done';
  }
}
