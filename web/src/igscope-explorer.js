// <igscope-explorer>: an Integrated Gradients figure to embed in any page
// with one ES import. It runs on the live page's modules (the worker, its
// client, the heatmap and image code); every widget on a page shares one
// worker, one WebAssembly module and one copy of each model file. The
// threaded build runs when the host page is cross-origin isolated, the
// single-threaded SIMD build when it is not. Nothing is fetched but the
// package's own files (wasm/, models/, data/ next to src/) and the URLs given
// in the attributes. Styles live in a shadow root: the host page's CSS
// neither reaches in nor leaks out.
import { EngineClient, parseResult } from './engine-client.js';
import { drawHeatmap, flatten } from './heatmap.js';
import { PIXELS, drawGray, invert, toGray28 } from './image-input.js';
import { fetchModel, fetchSample, stack } from './models.js';

// The package's root (the folder above src/). Through a variable: bundlers
// and dev servers rewrite literal `new URL(path, import.meta.url)` as assets.
const HERE = import.meta.url;
const PACKAGE_ROOT = new URL('../', HERE);
export const DEFAULT_MODEL = new URL('models/fashion_cnn_smelu.safetensors', PACKAGE_ROOT).href;
export const DEFAULT_SAMPLES = new URL('data/test_sample.json', PACKAGE_ROOT).href;
// The training images behind the mean, median and train:N baselines.
export const DEFAULT_TRAIN_SAMPLES = new URL('data/train_sample.json', PACKAGE_ROOT).href;

// ---- the engine all widgets share ------------------------------------------

// One worker for the page; each widget is a lane of it (latest.js), so a
// widget's newer request cancels its own request queued or in flight, never
// another widget's. A job names its model and training images, which the
// worker switches to before it runs; each URL is fetched, and sent to the
// worker, once.
class SharedEngine {
  constructor() {
    this.client = new EngineClient({ base: PACKAGE_ROOT.href });
    this.ready = this.client.ready;
    this.samples = new Map();
    this.provided = new Map();
  }

  // A widget's lane: onResult(json) gets the results of its newest request.
  lane(onResult) {
    return this.client.lane((msg) => {
      if (msg.type !== 'explain') return;
      const json = parseResult(msg.text);
      if (!json.cancelled) onResult(json);
    });
  }

  sample(url) {
    if (!this.samples.has(url)) {
      const p = fetchSample(url);
      p.catch(() => this.samples.delete(url));
      this.samples.set(url, p);
    }
    return this.samples.get(url);
  }

  // Resolves once the worker has the model (kind 'model', `key` its URL and
  // import options) or the training images ('dataset', `key` their URL).
  provide(kind, key, url = key, onnx = null) {
    const id = `${kind} ${key}`;
    if (!this.provided.has(id)) {
      const p = (async () => {
        await this.ready;
        if (kind === 'model') {
          const bytes = await fetchModel(url);
          this.client.provide('model', key, { bytes, onnx, name: url }, [bytes]);
        } else this.client.provide('dataset', url, stack((await this.sample(url)).images));
      })();
      p.catch(() => this.provided.delete(id));
      this.provided.set(id, p);
    }
    return this.provided.get(id);
  }

  // Posts the job as request `id` of `lane` (taken when the widget changed,
  // so a request that fetched longer than a newer one is dropped unrun).
  async submit(lane, id, job) {
    // Two widgets that import one ONNX file with different options hold two models.
    const modelKey = job.onnx ? `${job.model} ${JSON.stringify(job.onnx)}` : job.model;
    await this.provide('model', modelKey, job.model, job.onnx);
    if (job.dataset) await this.provide('dataset', job.dataset);
    lane.post(id, 'explain', {
      input: job.input,
      request: job.request,
      needs: { model: modelKey, dataset: job.dataset, baselineImage: job.baselineImage },
    });
  }
}

let shared = null;
function engine() {
  if (!shared) shared = new SharedEngine();
  return shared;
}

// A model URL whose path ends in .onnx is imported in the worker, with the
// options of the input-range, mean and std attributes (as `igscope import`
// takes them); any other is an igscope model file.
function onnxOptions(element, url) {
  if (!/\.onnx$/i.test(new URL(url).pathname)) return null;
  return {
    inputRange: element.getAttribute('input-range') || '0:1',
    mean: element.getAttribute('mean') || '',
    std: element.getAttribute('std') || '',
  };
}

// ---- baselines -------------------------------------------------------------

// The kinds the widget's control offers; `param` is the slider of the kinds
// that have one.
const KINDS = {
  black: { label: 'black' },
  white: { label: 'white' },
  blur: { label: 'blurred input', param: { min: 0.5, max: 10, step: 0.5, value: 4, name: 'σ' } },
  gaussian: { label: 'noisy input', param: { min: 0.05, max: 1, step: 0.05, value: 0.3, name: 'σ' } },
  constant: { label: 'gray', param: { min: 0, max: 1, step: 0.05, value: 0.5, name: 'value' } },
  uniform: { label: 'uniform noise' },
  maxdist: { label: 'max distance' },
  mean: { label: 'training mean', dataset: true },
  median: { label: 'training median', dataset: true },
  train: { label: 'training images', dataset: true, param: { min: 1, max: 16, step: 1, value: 8, name: 'N' } },
};

// Whether a baseline spec draws on the training images (they are sent to the
// worker once, before the first request that needs them).
function needsDataset(spec) {
  return /^(mean|median|train:)/.test(spec.trim());
}

// {kind, value} of a spec the control can show, or {kind: 'other'}.
function parseSpec(spec) {
  const m = /^(\w+)(?::([0-9.eE+-]+))?(?:@(\d+))?$/.exec(spec.trim());
  if (!m || !KINDS[m[1]]) return { kind: 'other', spec };
  const kind = m[1];
  const p = KINDS[kind].param;
  if (p && m[2] === undefined) return { kind: 'other', spec };
  if (!p && m[2] !== undefined) return { kind: 'other', spec };
  return { kind, value: p ? Number(m[2]) : null, seed: m[3] === undefined ? null : Number(m[3]) };
}

function specOf(kind, value, seed) {
  const p = KINDS[kind].param;
  const s = seed === null || seed === undefined ? '' : `@${seed}`;
  if (kind === 'gaussian') return `gaussian:${value}${s || '@0'}`;
  if (kind === 'uniform') return `uniform${s || '@0'}`;
  return p ? `${kind}:${value}` : kind;
}

// ---- the element -----------------------------------------------------------

const STYLE = `
:host { display: inline-block !important; vertical-align: top;
  contain: content; }
:host([hidden]) { display: none !important; }
.root { all: initial; display: block; box-sizing: border-box; margin: 0; padding: 8px 10px; width: 324px;
  font: 13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232b; background: #fff;
  border: 1px solid #d6dbe1; border-radius: 6px; text-align: left; direction: ltr; }
.root * { box-sizing: border-box; font: inherit; color: inherit; }
.maps { display: flex; gap: 8px; }
.cell { display: flex; flex-direction: column; gap: 2px; margin: 0; }
canvas { display: block; width: 148px; height: 148px; image-rendering: pixelated; background: #000;
  border-radius: 3px; }
.cap { display: block; font-size: 11px; color: #5b6470; min-height: 15px; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; width: 148px; }
.controls { display: flex; align-items: center; gap: 6px; margin-top: 6px; flex-wrap: wrap; }
select { padding: 1px 2px; border: 1px solid #b9c0c9; border-radius: 3px; background: #fff; }
input[type=range] { width: 80px; margin: 0; }
output { font-variant-numeric: tabular-nums; min-width: 28px; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 0 8px; margin: 6px 0 0; font-size: 12px; }
dt { color: #5b6470; margin: 0; }
dd { margin: 0; font-variant-numeric: tabular-nums; }
.status { display: block; margin-top: 5px; font-size: 11px; color: #5b6470; }
.error { display: block; margin-top: 5px; padding: 4px 6px; font-size: 12px; color: #8a1c1c; background: #fdecec;
  border-radius: 3px; }
[hidden] { display: none !important; }
:host([compact]) .root { width: 324px; }
`;

const TEMPLATE = `
<div class="root" part="root">
  <div class="maps">
    <figure class="cell"><canvas class="input" part="input" width="28" height="28" aria-label="the input"></canvas>
      <figcaption class="cap input-cap"></figcaption></figure>
    <figure class="cell"><canvas class="heatmap" part="heatmap" width="148" height="148" aria-label="the attribution map"></canvas>
      <figcaption class="cap map-cap"></figcaption></figure>
  </div>
  <div class="controls" part="controls">
    <label>baseline <select class="kind"></select></label>
    <input class="param" type="range" aria-label="baseline parameter" hidden><output class="param-value" hidden></output>
  </div>
  <dl class="numbers" part="numbers">
    <dt>prediction</dt><dd class="n-pred">–</dd>
    <dt>F(x), F(x′)</dt><dd class="n-f">–</dd>
    <dt>sum of attributions</dt><dd class="n-sum">–</dd>
    <dt>completeness gap</dt><dd class="n-gap">–</dd>
  </dl>
  <span class="status" part="status">starting…</span>
  <div class="error" role="alert" hidden></div>
</div>`;

const OBSERVED = ['model', 'input-range', 'mean', 'std', 'image', 'sample', 'samples', 'train-samples', 'target', 'method', 'baseline', 'steps', 'quadrature', 'render', 'invert', 'compact'];

export class IgscopeExplorer extends HTMLElement {
  static get observedAttributes() {
    return OBSERVED;
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = `<style>${STYLE}</style>${TEMPLATE}`;
    this.$ = (sel) => root.querySelector(sel);
    this._input = null; // Float32Array(784) the model sees
    this._inputSource = null; // set through setInput: wins over the attributes
    this._inputKey = null;
    this._baselineOverride = null; // spec string or Float32Array set through setBaseline
    this._result = null;
    this._state = 'idle';
    this._info = null;
    this._lane = null; // the widget's lane of the shared engine, once connected
    this._scheduled = false;
    const kind = this.$('.kind');
    for (const [value, { label }] of Object.entries(KINDS)) kind.append(new Option(label, value));
    kind.addEventListener('input', () => {
      const p = KINDS[kind.value] && KINDS[kind.value].param;
      const slider = this.$('.param');
      if (p) Object.assign(slider, { min: p.min, max: p.max, step: p.step, value: p.value });
      this._baselineOverride = specOf(kind.value, p ? Number(slider.value) : null, null);
      this._changed();
    });
    this.$('.param').addEventListener('input', () => {
      this._baselineOverride = specOf(kind.value, Number(this.$('.param').value), null);
      this._changed();
    });
  }

  connectedCallback() {
    this._applyCompact();
    if (!this._lane) this._lane = engine().lane((json) => this._engineResult(json));
    engine().ready.then(
      (info) => {
        this._info = info;
        this._showStatus();
      },
      (e) => this._fail(e),
    );
    this._changed();
  }

  disconnectedCallback() {
    this._lane.cancel();
  }

  attributeChangedCallback(name) {
    if (name === 'compact') this._applyCompact();
    if (name === 'baseline') this._baselineOverride = null;
    if (name === 'image' || name === 'sample' || name === 'samples') this._inputSource = null;
    if (name === 'render') this._draw();
    else if (this.isConnected) this._changed();
  }

  // ---- the JS API ----------------------------------------------------------

  // The last result: the module's JSON (attributions, f_input, f_baseline,
  // attribution_sum, gap, relative_gap, ...), or null.
  get result() {
    return this._result ? structuredClone(this._result) : null;
  }

  // 'idle' | 'loading' | 'computing' | 'done' | 'error'
  get state() {
    return this._state;
  }

  // The build in use: {build: 'threaded-relaxed' | 'threaded' | 'single', threads, simd, isa, crossOriginIsolated}.
  get engineInfo() {
    return this._info ? { ...this._info } : null;
  }

  // The input: 784 values in [0, 1] (28x28, light garment on black), an
  // image URL, a Blob or File, or anything createImageBitmap takes. Resolves
  // once the input is in place (the result follows as an event).
  async setInput(source) {
    try {
      this._inputSource = await toPixels(source, this.getAttribute('invert'));
      this._inputKey = { kind: 'set' };
      this._changed();
    } catch (e) {
      this._fail(e);
      throw e;
    }
  }

  // A baseline spec string ('black', 'blur:4', 'gaussian:0.3@0', ...) or an
  // image (784 values in [0, 1]); null goes back to the attribute.
  setBaseline(baseline) {
    if (baseline === null || baseline === undefined) this._baselineOverride = null;
    else if (typeof baseline === 'string') this._baselineOverride = baseline;
    else {
      const px = Float32Array.from(baseline);
      if (px.length !== PIXELS) throw new Error(`a baseline image has ${PIXELS} values, got ${px.length}`);
      this._baselineOverride = px;
    }
    this._changed();
  }

  // ---- internals -----------------------------------------------------------

  _applyCompact() {
    const compact = this.hasAttribute('compact');
    this.$('.numbers').hidden = compact;
  }

  _baselineSpec() {
    const b = this._baselineOverride;
    if (b instanceof Float32Array) return 'image:custom';
    return b || this.getAttribute('baseline') || 'black';
  }

  _request() {
    const target = this.getAttribute('target');
    const steps = Number(this.getAttribute('steps') || 32);
    return {
      method: this.getAttribute('method') || 'ig',
      target: target === null || target === '' || target === 'predicted' ? -1 : Number(target),
      output: 'logit',
      baseline: this._baselineSpec(),
      steps: Number.isInteger(steps) && steps > 0 ? steps : 32,
      quadrature: this.getAttribute('quadrature') || 'gausslegendre',
    };
  }

  _changed() {
    if (this._scheduled) return;
    this._scheduled = true;
    queueMicrotask(() => {
      this._scheduled = false;
      if (this.isConnected) this._update();
    });
  }

  async _update() {
    // The new request's id, at once: it cancels the one in flight.
    const id = this._lane.next();
    this._syncControl();
    try {
      this._setState('loading');
      const input = await this._loadInput();
      if (!this._lane.isNewest(id)) return;
      this._input = input;
      drawGray(this.$('.input'), input);
      const b = this._baselineOverride;
      const model = new URL(this.getAttribute('model') || DEFAULT_MODEL, document.baseURI).href;
      const job = {
        model,
        onnx: onnxOptions(this, model),
        input,
        request: this._request(),
        baselineImage: b instanceof Float32Array ? b : null,
        dataset: needsDataset(this._baselineSpec())
          ? new URL(this.getAttribute('train-samples') || DEFAULT_TRAIN_SAMPLES, document.baseURI).href
          : null,
      };
      this._setState('computing');
      await engine().submit(this._lane, id, job);
    } catch (e) {
      if (this._lane.isNewest(id)) this._fail(e);
    }
  }

  async _loadInput() {
    if (this._inputSource) return this._inputSource;
    const image = this.getAttribute('image');
    if (image) {
      const url = new URL(image, document.baseURI).href;
      const inv = this.getAttribute('invert');
      if (this._inputKey && this._inputKey.url === url && this._inputKey.invert === inv) return this._inputKey.pixels;
      const pixels = await toPixels(url, inv);
      this._inputKey = { url, invert: inv, pixels };
      this.$('.input-cap').textContent = `input: ${url.split('/').pop()}`;
      return pixels;
    }
    const samples = new URL(this.getAttribute('samples') || DEFAULT_SAMPLES, document.baseURI).href;
    const position = Number(this.getAttribute('sample') || 0);
    const data = await engine().sample(samples);
    const s = data.images[position];
    if (!Number.isInteger(position) || !s) throw new Error(`sample ${this.getAttribute('sample')} is not in ${samples} (${data.images.length} images)`);
    this.$('.input-cap').textContent = `test image ${s.index}: ${data.classes[s.label]}`;
    return s.pixels;
  }

  _syncControl() {
    const spec = this._baselineSpec();
    const parsed = parseSpec(spec);
    const kind = this.$('.kind');
    let other = kind.querySelector('option[data-other]');
    if (parsed.kind === 'other') {
      if (!other) {
        other = new Option('', '');
        other.dataset.other = '1';
        kind.append(other);
      }
      other.value = spec;
      other.textContent = spec === 'image:custom' ? 'custom image' : spec;
      kind.value = spec;
    } else {
      if (other) other.remove();
      kind.value = parsed.kind;
    }
    const p = parsed.kind !== 'other' && KINDS[parsed.kind].param;
    const slider = this.$('.param');
    slider.hidden = !p;
    this.$('.param-value').hidden = !p;
    if (p) {
      Object.assign(slider, { min: p.min, max: p.max, step: p.step });
      slider.value = String(parsed.value);
      slider.setAttribute('aria-label', `baseline ${p.name}`);
      this.$('.param-value').textContent = `${p.name} ${parsed.value}`;
    }
  }

  _engineResult(json) {
    if (json.error) {
      this._fail(new Error(json.error));
      return;
    }
    this._result = json;
    this.$('.error').hidden = true;
    this._draw();
    const fmt = (v) => (v === null || v === undefined ? '–' : v.toFixed(3));
    const p = json.probabilities[json.predicted];
    this.$('.n-pred').textContent = `${json.predicted_name} (${(100 * p).toFixed(1)}%)`;
    this.$('.n-f').textContent = `${fmt(json.f_input)}, ${fmt(json.f_baseline)}`;
    this.$('.n-sum').textContent = fmt(json.attribution_sum);
    this.$('.n-gap').textContent =
      json.gap === null ? '– (not a path method)' : `${json.gap.toExponential(2)} (${(100 * Math.abs(json.relative_gap)).toFixed(2)}%)`;
    this._setState('done');
    this._showStatus();
    this.dispatchEvent(
      new CustomEvent('igscope-result', {
        bubbles: true,
        composed: true,
        detail: {
          result: structuredClone(json),
          gap: json.gap,
          relativeGap: json.relative_gap,
          fInput: json.f_input,
          fBaseline: json.f_baseline,
          attributionSum: json.attribution_sum,
          predicted: json.predicted,
          target: json.target,
          build: this._info ? this._info.build : null,
        },
      }),
    );
  }

  _draw() {
    const r = this._result;
    if (!r) return;
    const mode = this.getAttribute('render') || 'signed';
    drawHeatmap(this.$('.heatmap'), flatten(r.attributions), { mode, percentile: 99, alpha: 0.7, input: this._input }, 148);
    const method = { ig: 'IG', gradient: 'gradient', gradxinput: 'gradient × input', smoothgrad: 'SmoothGrad', blurig: 'Blur IG' }[r.method] || r.method;
    this.$('.map-cap').textContent = `${method} for “${r.target_name}”${r.baseline ? `, ${r.baseline}` : ''}`;
  }

  _showStatus() {
    const info = this._info;
    if (!info) return;
    const build =
      info.build === 'single' ? 'single-threaded build, SIMD'
        : `threaded build, ${info.threads} threads, ${info.build === 'threaded-relaxed' ? 'relaxed SIMD' : 'SIMD'}`;
    const r = this._state === 'done' && this._result;
    this.$('.status').textContent = r ? `${r.milliseconds.toFixed(0)} ms · ${build}` : build;
    this.$('.status').dataset.build = info.build;
  }

  _setState(state) {
    this._state = state;
    if (state !== 'done' && this._info) this._showStatus();
  }

  _fail(error) {
    const message = error && error.message ? error.message : String(error);
    this._setState('error');
    const el = this.$('.error');
    el.textContent = message;
    el.hidden = false;
    this.dispatchEvent(new CustomEvent('igscope-error', { bubbles: true, composed: true, detail: { message } }));
  }
}

// 784 values in [0, 1] from pixels, a URL, a Blob or an image source. Pictures
// are fitted into 28x28 gray; `invert` 'true' / 'false' forces inversion,
// anything else inverts pictures whose border is light.
async function toPixels(source, invertAttr) {
  if (source instanceof Float32Array || Array.isArray(source)) {
    const px = Float32Array.from(source);
    if (px.length !== PIXELS) throw new Error(`an input has ${PIXELS} values (28x28), got ${px.length}`);
    return px;
  }
  let bitmapSource = source;
  let name = 'the image';
  if (typeof source === 'string' || source instanceof URL) {
    name = String(source);
    const response = await fetch(source);
    if (!response.ok) throw new Error(`could not load ${name} (HTTP ${response.status})`);
    bitmapSource = await response.blob();
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(bitmapSource);
  } catch (e) {
    throw new Error(`${name} is not an image this browser can decode`);
  }
  const { pixels, suggestInvert } = toGray28(bitmap);
  bitmap.close();
  const inv = invertAttr === 'true' || invertAttr === '' ? true : invertAttr === 'false' ? false : suggestInvert;
  return inv ? invert(pixels) : pixels;
}

if (!customElements.get('igscope-explorer')) customElements.define('igscope-explorer', IgscopeExplorer);
