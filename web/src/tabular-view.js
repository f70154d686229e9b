// The tabular view: the diabetes regressor (a second model in the same
// module), IG per feature of one held-out row against a baseline for tables
// (the training split's means or medians, or zero in standardised units),
// as signed bars with the prediction and the completeness gap. The module
// standardises the raw rows with the statistics the model file stores.
// Loaded when first opened.
import { fetchModel } from './models.js';
import { drawSignedBars, formatSigned, showValue } from './signed-bars.js';
import { parseResult } from './engine-client.js';

export const TABULAR_BASELINES = {
  mean: 'the training split’s means',
  median: 'the training split’s medians',
  'constant:0': 'zero (standardised units: the means again)',
};

export class TabularView {
  constructor({ root, client, modelUrl, rowsUrl, onError }) {
    this.root = root;
    this.client = client;
    this.modelUrl = modelUrl;
    this.rowsUrl = rowsUrl;
    this.onError = onError;
    this.loaded = null;
    const body = document.createElement('div');
    body.innerHTML = `
      <p data-testid="tabular-caption" class="muted"></p>
      <div class="grid2">
        <label>held-out row <select data-testid="tabular-row"></select></label>
        <label>baseline <select data-testid="tabular-baseline"></select></label>
        <label>steps <input type="range" data-testid="tabular-steps" min="1" max="256" step="1" value="32" /> <output></output></label>
      </div>
      <table class="numbers">
        <tr><th>prediction F(x)</th><td data-testid="tabular-prediction"></td></tr>
        <tr><th>measured</th><td data-testid="tabular-measured"></td></tr>
        <tr><th>F(x′), the baseline</th><td data-testid="tabular-f-baseline"></td></tr>
        <tr><th>sum of attributions</th><td data-testid="tabular-sum"></td></tr>
        <tr><th>completeness gap, Σ − (F(x) − F(x′))</th><td data-testid="tabular-gap"></td></tr>
      </table>
      <div data-testid="tabular-bars" class="sbars"></div>
      <table class="numbers" data-testid="tabular-table"></table>`;
    root.append(body);
    const q = (name) => body.querySelector(`[data-testid="tabular-${name}"]`);
    this.q = q;
    for (const [value, label] of Object.entries(TABULAR_BASELINES)) {
      const opt = document.createElement('option');
      opt.value = value;
      opt.textContent = `${value}: ${label}`;
      q('baseline').append(opt);
    }
    this.steps = q('steps');
    this.stepsOut = this.steps.nextElementSibling;
    this.stepsOut.textContent = this.steps.value;
    for (const el of [q('row'), q('baseline'), this.steps]) el.addEventListener('input', () => this.run());
    root.addEventListener('toggle', () => {
      if (root.open) this.load().then(() => this.run());
    });
    this.lane = client.lane((msg) => {
      if (msg.type === 'tabular') this.receive(msg.id, msg.text);
    });
  }

  load() {
    if (!this.loaded) {
      this.loaded = (async () => {
        const [bytes, rows] = await Promise.all([
          fetchModel(this.modelUrl),
          fetch(this.rowsUrl).then((r) => {
            if (!r.ok) throw new Error(`could not load the rows (HTTP ${r.status})`);
            return r.json();
          }),
        ]);
        const model = await this.client.loadTabularModel(bytes);
        if (model.error) throw new Error(model.error);
        const training = rows.rows.filter((r) => !r.held_out);
        const values = new Float32Array(training.length * model.features.length);
        training.forEach((r, i) => values.set(r.raw, i * model.features.length));
        const set = await this.client.setTabularRows(values);
        if (set.error) throw new Error(set.error);
        this.model = model;
        this.rows = rows.rows;
        const heldOut = rows.rows.filter((r) => r.held_out);
        const select = this.q('row');
        select.replaceChildren();
        for (const r of heldOut) {
          const opt = document.createElement('option');
          opt.value = String(r.index);
          opt.textContent = `row ${r.index} (measured ${r.target})`;
          select.append(opt);
        }
        this.q('caption').textContent =
          `${model.name} (${model.parameters} parameters) predicts ${model.target} from ${model.features.length} features ` +
          `(${model.features.join(', ')}), standardised with the training split's statistics stored in the model file. ` +
          `The ${heldOut.length} held-out rows of its split; IG per feature, Gauss-Legendre quadrature.`;
        this.root.dataset.loaded = 'true';
      })().catch((e) => {
        this.loaded = null;
        this.root.dataset.state = 'error';
        this.onError(`Could not load the tabular model: ${e.message}`);
        throw e;
      });
    }
    return this.loaded;
  }

  run() {
    if (!this.model) return;
    this.stepsOut.textContent = this.steps.value;
    const row = this.rows[Number(this.q('row').value)];
    const request = { method: 'ig', baseline: this.q('baseline').value, steps: Number(this.steps.value), quadrature: 'gausslegendre' };
    this.row = row;
    this.root.dataset.state = 'computing';
    const id = this.lane.request('tabular', { raw: Float32Array.from(row.raw), request });
    this.root.dataset.requestId = String(id);
  }

  receive(id, text) {
    const r = parseResult(text);
    if (r.cancelled) return;
    this.root.dataset.resultId = String(id);
    if (r.error) {
      this.root.dataset.state = 'error';
      this.onError(`The tabular attribution failed: ${r.error}`);
      return;
    }
    this.result = r;
    const a = r.attributions.flat(Infinity);
    const set = (name, value, text) => showValue(this.q(name), value, text);
    set('prediction', r.prediction, r.prediction.toFixed(3));
    set('measured', this.row.target, `${this.row.target} (row ${this.row.index})`);
    set('f-baseline', r.f_baseline, r.f_baseline.toFixed(3));
    set('sum', r.attribution_sum, r.attribution_sum.toFixed(4));
    const span = Math.abs(r.f_input - r.f_baseline);
    set('gap', r.gap, `${r.gap.toExponential(3)}${span ? ` (${((100 * Math.abs(r.gap)) / span).toFixed(3)}% of |F(x) − F(x′)|)` : ''}`);
    drawSignedBars(
      this.q('bars'),
      r.features.map((name, i) => ({ label: name, value: a[i] })),
      { testid: 'feature', digits: 3 },
    );
    const table = this.q('table');
    table.replaceChildren();
    const head = table.insertRow();
    for (const h of ['feature', 'value', 'baseline', 'attribution']) {
      const th = document.createElement('th');
      th.textContent = h;
      head.append(th);
    }
    r.features.forEach((name, i) => {
      const tr = table.insertRow();
      for (const text of [name, r.raw[i].toPrecision(5), r.baseline_raw ? r.baseline_raw[i].toPrecision(5) : '–', formatSigned(a[i], 5)])
        tr.insertCell().textContent = text;
    });
    this.root.dataset.state = 'done';
  }
}
