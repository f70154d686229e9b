// The worker that owns the WebAssembly module. The page never calls the
// module itself: it posts messages here and draws what comes back.
//
// Messages from the page:
//   {type: 'init', base, shared}         load the module (threaded when the
//                                        worker is cross-origin isolated, with
//                                        relaxed SIMD where the engine has it);
//                                        shared: the lanes' counters (latest.js)
// Setup calls, run in the order they came, each answered {type, seq, result}:
//   {type: 'model', seq, bytes, onnx}    load a model: an igscope model file,
//                                        or ONNX when onnx holds its import
//                                        options {inputRange, mean, std}
//   {type: 'dataset', seq, pixels}       images for the mean / train:N baselines
//   {type: 'baselineImage', seq, pixels} the custom baseline image (or null)
//   {type: 'predictAll', seq, pixels}    predicted classes of many images
//   {type: 'layers', seq}                the current model's layers
//   {type: 'tabularModel', seq, bytes}   load the tabular regressor
//   {type: 'tabularRows', seq, values}   its training rows (raw units, flat)
// Resources that jobs name (kept here; no answer):
//   {type: 'provide', kind: 'model' | 'dataset', key, data}   (a model's data: {bytes, onnx, name})
// Jobs, each of a lane, "latest wins" within the lane (latest.js):
//   {type: 'explain', lane, id, input, request, needs}
//   {type: 'gallery', lane, id, input, items: [{key, request}], needs}
//   {type: 'conductance', lane, id, input, request}   layer conductance
//   {type: 'tabular', lane, id, raw, request}         IG of one raw tabular row
//   {type: 'cancel', lane, id}                        only cancels
// A job's optional needs {model, dataset, baselineImage} name the provided
// model and training images (by key) and give the baseline image it runs
// with; they are put in place before it runs (the widgets, whose requests
// use different models, send them). Each job is answered
// {type: 'started', lane, id}, then {type, lane, id, text, stats} (gallery:
// one {type: 'gallery', ..., key} per item, then {type: 'galleryDone', ...}).
// Setup calls run before any job.
import { LatestQueue } from './latest.js';

let engine = null;
let queue = null; // a LatestQueue once init has come
const setup = [];
const provided = { model: new Map(), dataset: new Map() };
// What the module has now, as named in jobs' needs; null when a setup call
// put something else there.
const current = { model: null, dataset: null, baselineImage: null };
let scheduled = false;
let busy = false;

function parse(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return { error: `the module returned something that is not JSON: ${String(text).slice(0, 80)}` };
  }
}

// A model's bytes through the importer when `onnx` holds import options,
// else as an igscope model file.
function loadModel(bytes, onnx) {
  const b = new Uint8Array(bytes);
  return parse(onnx ? engine.importOnnxModel(b, JSON.stringify(onnx)) : engine.loadModel(b));
}

// Whether the engine validates f32x4.relaxed_madd: a module of one function,
// (func (result v128) (f32x4.relaxed_madd (v128.const 0) (v128.const 0) (v128.const 0))).
// Written out here because the widget ships these modules unbundled, with no
// dependencies.
function hasRelaxedSimd() {
  const zero = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x85, 0x02, 0x0b];
  const bytes = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
    0x03, 0x02, 0x01, 0x00, // one function of type 0
    0x0a, body.length + 2, 0x01, body.length, ...body, // its code
  ]);
  return WebAssembly.validate(bytes);
}

// The module for this worker: threaded with relaxed SIMD (fused
// multiply-adds) where the engine has it, else threaded, when cross-origin
// isolated; single-threaded SIMD otherwise.
async function loadModule(base, isolated) {
  const kinds = isolated ? (hasRelaxedSimd() ? ['threaded-relaxed', 'threaded'] : ['threaded']) : ['single'];
  let fallback = null;
  for (const [i, kind] of kinds.entries()) {
    try {
      const url = new URL(`wasm/${kind}/igscope.mjs`, base).href;
      return { kind, module: await instantiate(url, isolated), fallback };
    } catch (e) {
      // A deployment without the relaxed build (or one the engine still
      // refuses) runs the plain threaded one.
      if (i === kinds.length - 1) throw e;
      fallback = `the ${kind} build failed to load (${e.message || e}); running the next one`;
    }
  }
}

async function instantiate(url, isolated) {
  const { default: createIgscope } = await import(/* @vite-ignore */ url);
  const options = {};
  if (isolated && new URL(url).origin !== self.location.origin) {
    // The module's thread pool starts classic workers from its own folder,
    // which a browser refuses across origins: start them from a blob of the
    // same script, told where the module is.
    const response = await fetch(new URL('igscope.worker.js', url));
    if (!response.ok) throw new Error(`could not load the thread pool's worker script (HTTP ${response.status})`);
    const blob = URL.createObjectURL(new Blob([await response.text()], { type: 'text/javascript' }));
    options.mainScriptUrlOrBlob = url;
    options.locateFile = (path, dir) => (path === 'igscope.worker.js' ? blob : dir + path);
  }
  return createIgscope(options);
}

async function init({ base, shared }) {
  const isolated = self.crossOriginIsolated === true && typeof SharedArrayBuffer !== 'undefined';
  queue = new LatestQueue(isolated && shared ? new Int32Array(shared) : null);
  const { kind, module, fallback } = await loadModule(base, isolated);
  engine = new module.Engine(0);
  return { ...parse(engine.buildInfo()), build: kind, crossOriginIsolated: isolated, ...(fallback ? { fallback } : {}) };
}

function schedule() {
  if (scheduled || busy) return;
  scheduled = true;
  // Run after the messages already queued have been delivered, so a burst of
  // requests collapses into its newest one.
  setTimeout(run, 0);
}

// The setup calls, then one job; the next job waits for the messages that
// came meanwhile.
async function run() {
  scheduled = false;
  if (!engine) return;
  busy = true;
  try {
    while (setup.length) {
      const msg = setup.shift();
      self.postMessage({ type: msg.type, seq: msg.seq, result: runSetup(msg) });
    }
    const job = queue.take();
    if (job) await runJob(job);
  } finally {
    busy = false;
  }
  if (setup.length || queue.size) schedule();
}

function runSetup(msg) {
  switch (msg.type) {
    case 'model':
      current.model = null;
      return loadModel(msg.bytes, msg.onnx);
    case 'dataset':
      current.dataset = null;
      return parse(engine.setDataset(msg.pixels));
    case 'baselineImage':
      current.baselineImage = null;
      return parse(engine.setBaselineImage(msg.pixels));
    case 'layers':
      return parse(engine.layers());
    case 'tabularModel':
      return parse(engine.loadTabularModel(new Uint8Array(msg.bytes)));
    case 'tabularRows':
      return parse(engine.setTabularRows(msg.values));
    case 'predictAll': {
      const n = msg.pixels.length / 784;
      const predicted = [];
      for (let i = 0; i < n; ++i) {
        const r = parse(engine.predict(msg.pixels.subarray(i * 784, (i + 1) * 784)));
        if (r.error) return r;
        predicted.push(r.predicted);
      }
      return { predicted };
    }
    default:
      return { error: `unknown message '${msg.type}'` };
  }
}

function sameValues(a, b) {
  return a === b || (a !== null && b !== null && a.length === b.length && a.every((v, i) => v === b[i]));
}

// Puts a job's needs in place; an error message, or null.
function prepare({ model, dataset, baselineImage } = {}) {
  if (model && current.model !== model) {
    const data = provided.model.get(model);
    if (!data) return `the model ${model} was not provided`;
    const r = loadModel(data.bytes, data.onnx);
    if (r.error) return `the model ${data.name || model} was refused: ${r.error}`;
    current.model = model;
  }
  if (dataset && current.dataset !== dataset) {
    const pixels = provided.dataset.get(dataset);
    if (!pixels) return `the training images ${dataset} were not provided`;
    const r = parse(engine.setDataset(pixels));
    if (r.error) return `the training images ${dataset} were refused: ${r.error}`;
    current.dataset = dataset;
  }
  if (baselineImage && !sameValues(current.baselineImage, baselineImage)) {
    const r = parse(engine.setBaselineImage(baselineImage));
    if (r.error) return `the baseline image was refused: ${r.error}`;
    current.baselineImage = baselineImage;
  }
  return null;
}

// One module call with the job's stop condition; counts the stops.
function call(job, compute) {
  const text = compute(() => queue.stale(job));
  if (text === '{"cancelled":true}') queue.stats.cancelled += 1;
  return text;
}

function answer(job, fields) {
  self.postMessage({ type: job.type, lane: job.lane, id: job.id, stats: { ...queue.stats }, ...fields });
}

async function runJob(job) {
  self.postMessage({ type: 'started', lane: job.lane, id: job.id });
  const failed = prepare(job.needs);
  if (failed) {
    answer(job, { text: JSON.stringify({ error: failed }) });
    return;
  }
  switch (job.type) {
    case 'explain':
      answer(job, { text: call(job, (stop) => engine.explain(job.input, JSON.stringify(job.request), stop)) });
      break;
    case 'conductance':
      answer(job, { text: call(job, (stop) => engine.conductance(job.input, JSON.stringify(job.request), stop)) });
      break;
    case 'tabular':
      answer(job, { text: call(job, (stop) => engine.explainTabular(job.raw, JSON.stringify(job.request), stop)) });
      break;
    case 'gallery':
      for (const item of job.items) {
        // Yield between items so a newer request that arrived meanwhile wins
        // even where no shared counter can cancel a computation in flight.
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (queue.stale(job)) return;
        answer(job, { key: item.key, text: call(job, (stop) => engine.explain(job.input, JSON.stringify(item.request), stop)) });
      }
      self.postMessage({ type: 'galleryDone', lane: job.lane, id: job.id });
      break;
    default:
      answer(job, { text: JSON.stringify({ error: `unknown job '${job.type}'` }) });
  }
}

const JOBS = new Set(['explain', 'gallery', 'conductance', 'tabular', 'cancel']);

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'init') {
    init(msg).then(
      (info) => {
        self.postMessage({ type: 'ready', info });
        schedule();
      },
      (e) => self.postMessage({ type: 'fatal', message: `could not start the WebAssembly module: ${e && e.message ? e.message : e}` }),
    );
    return;
  }
  if (msg.type === 'provide') {
    provided[msg.kind].set(msg.key, msg.data);
    return;
  }
  if (JOBS.has(msg.type)) queue.put(msg);
  else setup.push(msg);
  schedule();
};
