// The live page: wires the controls, the worker client and the views.
import './style.css';
import { BaselineGallery } from './baseline-gallery.js';
import { DatasetView } from './dataset-view.js';
import { LayerView } from './layer-view.js';
import { TabularView } from './tabular-view.js';
import { bindControls, currentRequest, number, refreshControls, usesBaseline } from './controls.js';
import { downloadCanvas, downloadJson } from './downloads.js';
import { EngineClient, parseResult } from './engine-client.js';
import { MODES, drawHeatmap, flatten } from './heatmap.js';
import { decodeImageFile, drawGray, invert, toGray28, transform } from './image-input.js';
import { MODELS, fetchModel, fetchSample, stack } from './models.js';
import { PathPlot } from './path-plot.js';
import { ProbabilityBars } from './probabilities.js';
import { SampleGrid } from './sample-grid.js';

const $ = (id) => document.getElementById(id);
// The page's root: the wasm/, models/ and data/ folders are under it.
const BASE = new URL(import.meta.env.BASE_URL, location.href);
const asset = (path) => new URL(path, BASE).href;

const state = {
  classes: [],
  test: null,
  train: null,
  model: null,
  source: null, // {kind: 'sample', position} | {kind: 'upload', name}
  gray: null, // the source image before inversion and transforms
  input: null, // what the model sees
  customBaseline: -1, // the test image sent as the custom baseline
  modelSource: null, // the current model's {bytes, onnx}, loaded back when a new one is refused
  uploaded: null, // the uploaded model {key, bytes, onnx}, for the model list's "uploaded" entry
  attribution: null, // the lane of the map and its baseline gallery
  result: null, // {id, text, json}
  galleryKey: null,
};

// ---- messages and status -------------------------------------------------

function showError(message) {
  $('error-text').textContent = message;
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error-text').textContent = '';
}

$('error-close').addEventListener('click', clearError);

function setStatus(kind, text) {
  const el = $('status');
  el.dataset.state = kind;
  el.textContent = text;
}

// ---- views ---------------------------------------------------------------

for (const [value, label] of Object.entries(MODES)) {
  const opt = document.createElement('option');
  opt.value = value;
  opt.textContent = label;
  $('render-mode').append(opt);
}

const bars = new ProbabilityBars($('probabilities'), (k) => {
  $('target').value = String(k);
  refreshControls();
  compute();
});
const plot = new PathPlot($('path-plot'));
const gallery = new BaselineGallery($('baseline-gallery'));
const grid = new SampleGrid({
  container: $('samples'),
  filter: $('filter'),
  classFilter: $('filter-class'),
  count: $('sample-count'),
  onPick: (position) => pickSample(position),
});

function renderOptions() {
  return { mode: $('render-mode').value, percentile: number('clip'), alpha: number('alpha'), input: state.input };
}

function formatNumber(v, digits = 4) {
  return v === null || v === undefined ? '–' : v.toFixed(digits);
}

function setNumber(id, value, text = formatNumber(value)) {
  const el = $(id);
  el.textContent = text;
  el.dataset.value = value === null || value === undefined ? '' : String(value);
}

function render() {
  if (!state.result) return;
  const r = state.result.json;
  drawHeatmap($('heatmap'), flatten(r.attributions), renderOptions(), 280);
  $('heatmap-caption').textContent = `${r.method}, class “${r.target_name}”${r.baseline ? `, baseline ${r.baseline}` : ''}`;
  if (r.baseline_image) drawGray($('baseline-canvas'), flatten(r.baseline_image));
  else $('baseline-canvas').getContext('2d').clearRect(0, 0, 28, 28);
  gallery.redraw(renderOptions());
}

function showResult(r) {
  bars.update(r.probabilities, r.predicted, r.target);
  const option = $('target').querySelector('option[value="-1"]');
  option.textContent = `the predicted class (${r.predicted_name})`;
  setNumber('f-input', r.f_input);
  setNumber('f-baseline', r.f_baseline);
  setNumber('attr-sum', r.attribution_sum);
  setNumber('gap', r.gap, r.gap === null ? '– (not a path method)' : r.gap.toExponential(3));
  const span = r.f_baseline === null ? null : Math.abs(r.f_input - r.f_baseline);
  const percent = r.gap === null || !span ? null : (100 * Math.abs(r.gap)) / span;
  setNumber('gap-percent', percent, percent === null ? '–' : `${percent.toFixed(3)}%`);
  const info = state.info;
  setNumber(
    'timing',
    r.milliseconds,
    `${r.milliseconds.toFixed(1)} ms for ${r.evaluations} evaluations (${info.build}, ${info.threads} thread${info.threads === 1 ? '' : 's'}, ${info.simd ? 'SIMD' : 'no SIMD'})`,
  );
  plot.update(r);
  render();
  $('download-png').disabled = false;
  $('download-json').disabled = false;
}

// ---- the input -----------------------------------------------------------

function currentTransform() {
  return { zoom: number('zoom'), rotate: number('rotate'), dx: number('shift-x'), dy: number('shift-y') };
}

function updateInput() {
  const base = $('invert').checked ? invert(state.gray) : state.gray;
  state.input = transform(base, currentTransform());
  drawGray($('input-canvas'), state.input);
  for (const out of document.querySelectorAll('#input-panel output[for]')) out.textContent = $(out.getAttribute('for')).value;
}

function pickSample(position) {
  const s = state.test.images[position];
  state.source = { kind: 'sample', position };
  state.gray = s.pixels;
  $('invert').checked = false;
  $('upload-preview-box').hidden = true;
  $('input-caption').textContent = `test image ${s.index}: ${state.classes[s.label]}`;
  $('input-caption').dataset.index = String(s.index);
  grid.select(position);
  updateInput();
  compute();
}

async function uploadImage(file) {
  try {
    const bitmap = await decodeImageFile(file);
    const { pixels, suggestInvert } = toGray28(bitmap);
    bitmap.close();
    clearError();
    state.source = { kind: 'upload', name: file.name };
    state.gray = pixels;
    $('invert').checked = suggestInvert;
    drawGray($('upload-preview'), pixels);
    $('upload-preview-box').hidden = false;
    $('input-caption').textContent = `uploaded: ${file.name}`;
    delete $('input-caption').dataset.index;
    grid.select(-1);
    updateInput();
    compute();
  } catch (e) {
    showError(`Could not use the upload: ${e.message}. The previous input is kept.`);
  }
}

$('upload').addEventListener('change', (event) => {
  const file = event.target.files && event.target.files[0];
  event.target.value = '';
  if (file) uploadImage(file);
});

for (const id of ['invert', 'zoom', 'rotate', 'shift-x', 'shift-y']) {
  $(id).addEventListener('input', () => {
    if (!state.gray) return;
    updateInput();
    compute();
  });
}

$('reset-transform').addEventListener('click', () => {
  $('zoom').value = '1';
  $('rotate').value = '0';
  $('shift-x').value = '0';
  $('shift-y').value = '0';
  if (!state.gray) return;
  updateInput();
  compute();
});

// ---- computing -----------------------------------------------------------

function compute() {
  if (!state.model || !state.input) return;
  const request = currentRequest();
  if (usesBaseline(request.method) && request.baseline === 'image:custom') {
    const position = number('b-image');
    if (position !== state.customBaseline) {
      state.customBaseline = position;
      state.client.setBaselineImage(state.test.images[position].pixels).then((r) => {
        if (r.error) showError(`The custom baseline was refused: ${r.error}`);
      });
    }
  }
  const id = state.attribution.request('explain', { input: state.input, request });
  state.layerView.update(state.input, request);
  $('status').dataset.requestId = String(id);
  setStatus('computing', 'computing…');
}

function galleryKey() {
  const t = currentTransform();
  const src = state.source.kind === 'sample' ? `s${state.source.position}` : `u${state.source.name}`;
  return [state.model, src, $('invert').checked, t.zoom, t.rotate, t.dx, t.dy, number('target')].join('|');
}

function requestGallery() {
  const items = gallery.missing(galleryKey(), number('target'));
  if (items.length) state.attribution.request('gallery', { input: state.input, items });
}

// The attribution lane's messages (only those of its newest request).
function onAttribution({ type, id, key, text }) {
  if (type === 'started') $('status').dataset.startedId = String(id);
  else if (type === 'explain') onExplain(id, text);
  else if (type === 'gallery') onGalleryItem(key, text);
}

function onExplain(id, text) {
  const json = parseResult(text);
  if (json.cancelled) return;
  $('status').dataset.resultId = String(id);
  if (json.error) {
    showError(`The attribution failed: ${json.error}`);
    setStatus('error', 'error');
    return;
  }
  state.result = { id, text, json };
  showResult(json);
  setStatus('done', `done in ${json.milliseconds.toFixed(1)} ms`);
  requestGallery();
}

function onGalleryItem(key, text) {
  const json = parseResult(text);
  if (json.cancelled) return;
  gallery.add(key, json, renderOptions());
}

// ---- models --------------------------------------------------------------

// Loads a model (`onnx`: its import options when the bytes are ONNX). One
// the page cannot show (not a 28x28 grey image classifier over the test
// set's classes) is refused, and the previous model loaded back.
async function useModel(file, bytes, onnx = null) {
  // The map being computed is for the previous model: stop it.
  state.attribution.cancel();
  const copy = bytes.slice(0);
  const arch = await state.client.loadModel(bytes, onnx);
  if (arch.error) throw new Error(arch.error);
  try {
    const input = JSON.stringify(arch.input);
    if (input !== '[28,28,1]')
      throw new Error(`it takes input of shape ${input} (height, width, channels); this page shows 28x28 grey images`);
    if (arch.outputs !== state.classes.length)
      throw new Error(`it has ${arch.outputs} outputs; this page explains the ${state.classes.length} Fashion-MNIST classes`);
    const predicted = await state.client.predictAll(stack(state.test.images));
    if (predicted.error) throw new Error(predicted.error);
    const layers = await state.client.layers();
    if (layers.error) throw new Error(layers.error);
    grid.setPredicted(predicted.predicted);
    state.layerView.setLayers(layers.layers);
  } catch (e) {
    if (state.modelSource) await state.client.loadModel(state.modelSource.bytes.slice(0), state.modelSource.onnx);
    throw e;
  }
  state.model = file;
  state.modelSource = { bytes: copy, onnx };
  state.architecture = arch;
  state.customBaseline = -1;
  return arch;
}

const isOnnx = (name) => /\.onnx$/i.test(name);

// The ONNX import options of the page's fields.
function onnxOptions() {
  return { inputRange: $('onnx-range').value, mean: $('onnx-mean').value.trim(), std: $('onnx-std').value.trim() };
}

for (const m of MODELS) {
  const opt = document.createElement('option');
  opt.value = m.file;
  opt.textContent = m.label;
  $('model').append(opt);
}

$('model').addEventListener('input', async () => {
  const file = $('model').value;
  try {
    const up = state.uploaded;
    if (up && file === up.key) await useModel(file, up.bytes.slice(0), up.onnx);
    else await useModel(file, await fetchModel(asset(`models/${file}`)));
    clearError();
    compute();
  } catch (e) {
    showError(`Could not load the model ${file}: ${e.message}. The previous model is kept.`);
    $('model').value = state.model;
    compute();
  }
});

// A model file from the picker or dropped on the page: .onnx through the
// importer, anything else as an igscope model file.
async function uploadModel(file) {
  try {
    const bytes = await file.arrayBuffer();
    const onnx = isOnnx(file.name) ? onnxOptions() : null;
    await useModel(`upload:${file.name}`, bytes.slice(0), onnx);
    state.uploaded = { key: state.model, bytes, onnx };
    let opt = $('model').querySelector('option[data-upload]');
    if (!opt) {
      opt = document.createElement('option');
      opt.dataset.upload = '1';
      $('model').append(opt);
    }
    opt.value = state.model;
    opt.textContent = `uploaded: ${file.name}`;
    $('model').value = state.model;
    clearError();
    compute();
  } catch (e) {
    showError(`Could not load the model file "${file.name}": ${e.message}. The previous model is kept.`);
    compute();
  }
}

$('model-upload').addEventListener('change', (event) => {
  const file = event.target.files && event.target.files[0];
  event.target.value = '';
  if (file) uploadModel(file);
});

// Drag and drop anywhere on the page: a model file (.onnx, .safetensors)
// becomes the model, anything else goes to the input as an upload would.
document.addEventListener('dragover', (event) => {
  if (event.dataTransfer && Array.from(event.dataTransfer.types).includes('Files')) {
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  }
});
document.addEventListener('drop', (event) => {
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (!file) return;
  event.preventDefault();
  if (/\.(onnx|safetensors)$/i.test(file.name)) uploadModel(file);
  else uploadImage(file);
});

// ---- downloads -----------------------------------------------------------

function downloadName(ext) {
  const r = state.result.json;
  const src = state.source.kind === 'sample' ? `test${state.test.images[state.source.position].index}` : 'upload';
  return `igscope-${src}-${r.method}-class${r.target}.${ext}`;
}

$('download-png').addEventListener('click', () => state.result && downloadCanvas($('heatmap'), downloadName('png')));
$('download-json').addEventListener('click', () => state.result && downloadJson(state.result.text, downloadName('json')));

// ---- start ---------------------------------------------------------------

async function start() {
  state.client = new EngineClient({ base: BASE.href });
  state.attribution = state.client.lane(onAttribution);
  state.layerView = new LayerView({ root: $('layer-view'), client: state.client, onError: showError });
  state.datasetView = new DatasetView({ root: $('dataset-view'), url: asset('data/classmaps/classmaps.json'), onError: showError });
  state.tabularView = new TabularView({
    root: $('tabular-view'),
    client: state.client,
    modelUrl: asset('models/diabetes_mlp.safetensors'),
    rowsUrl: asset('data/diabetes_rows.json'),
    onError: showError,
  });
  bindControls({ onChange: () => compute(), onRender: () => render() });
  $('b-image').addEventListener('input', () => {
    refreshControls();
    compute();
  });
  const [info, test, train] = await Promise.all([
    state.client.ready,
    fetchSample(asset('data/test_sample.json')),
    fetchSample(asset('data/train_sample.json')),
  ]);
  state.info = info;
  state.test = test;
  state.train = train;
  state.classes = test.classes;
  const build = $('build-info');
  const kind = { 'threaded-relaxed': 'threaded', threaded: 'threaded', single: 'single-threaded' }[info.build];
  const simd = info.build === 'threaded-relaxed' ? 'SIMD with fused multiply-add (relaxed SIMD)' : info.simd ? 'SIMD' : 'no SIMD';
  build.textContent = `${kind} build, ${info.threads} thread${info.threads === 1 ? '' : 's'}, ${simd}${info.crossOriginIsolated ? '' : ' (page not cross-origin isolated)'}`;
  if (info.fallback) build.title = info.fallback;
  Object.assign(build.dataset, { build: info.build, threads: String(info.threads), simd: String(info.simd) });
  for (const [k, name] of test.classes.entries()) {
    const opt = document.createElement('option');
    opt.value = String(k);
    opt.textContent = name;
    $('target').append(opt);
  }
  $('b-image').max = String(test.images.length - 1);
  bars.setClasses(test.classes);
  grid.setSamples(test.images, test.classes);

  let loaded = null;
  const failures = [];
  for (const m of MODELS) {
    try {
      await useModel(m.file, await fetchModel(asset(`models/${m.file}`)));
      loaded = m.file;
      break;
    } catch (e) {
      failures.push(e.message);
    }
  }
  if (!loaded) throw new Error(`no model could be loaded: ${failures.join('; ')}`);
  $('model').value = loaded;
  const dataset = await state.client.setDataset(stack(train.images));
  if (dataset.error) showError(`The training images were refused: ${dataset.error}`);
  pickSample(0);
}

window.igscope = Object.freeze({
  // Read-only views for tests and the console.
  info: () => (state.info ? { ...state.info } : null),
  result: () => (state.result ? JSON.parse(state.result.text) : null),
  model: () => state.model,
  // Jobs replaced before they ran, cancelled in flight, and results dropped
  // as stale.
  stats: () => (state.client ? { ...state.client.stats } : null),
  // The views' latest results.
  conductance: () => (state.layerView && state.layerView.result ? structuredClone(state.layerView.result) : null),
  tabular: () => (state.tabularView && state.tabularView.result ? structuredClone(state.tabularView.result) : null),
});

start().catch((e) => {
  showError(`The page could not start: ${e.message}`);
  setStatus('failed', 'failed');
});
