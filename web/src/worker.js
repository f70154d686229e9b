// The worker that owns the WebAssembly module. The page never calls the
// module itself: it posts messages here and draws what comes back.
//
// Messages from the page:
//   {type: 'init', base, generation}     load the module (threaded when the
//                                        worker is cross-origin isolated)
//   {type: 'model', seq, bytes}          load a .safetensors model
//   {type: 'dataset', seq, pixels}       images for the mean / train:N baselines
//   {type: 'baselineImage', seq, pixels} the custom baseline image (or null)
//   {type: 'predictAll', seq, pixels}    predicted classes of many images
//   {type: 'explain', id, input, request}
//   {type: 'gallery', id, input, items: [{key, request}]}
//   {type: 'layers', seq}                the current model's layers
//   {type: 'tabularModel', seq, bytes}   load the tabular regressor
//   {type: 'tabularRows', seq, values}   its training rows (raw units, flat)
//   {type: 'conductance', id, input, request}   layer conductance
//   {type: 'tabular', id, raw, request}         IG of one raw tabular row
// Setup messages run in the order they came. Jobs (explain, gallery) follow
// "latest wins": only the newest one runs; an older one still queued is
// dropped, and one in flight is cancelled through the shared generation
// counter (cross-origin isolated pages) that shouldStop reads. The views'
// jobs (conductance, tabular) have their own lanes, each latest wins within
// its lane, and run after the page's attribution job; on isolated pages a
// newer request of a lane stops that lane's computation in flight too.
import { LANE_SLOTS } from './generation.js';

let engine = null;
let info = null;
let generation = null;
let ready = null;
const setup = [];
let job = null;
const lanes = new Map();
let scheduled = false;
let busy = false;
// How often "latest wins" applied: jobs replaced before they ran, and
// computations cancelled while in flight.
const stats = { skipped: 0, cancelled: 0 };

function parse(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return { error: `the module returned something that is not JSON: ${String(text).slice(0, 80)}` };
  }
}

async function init({ base, generation: gen }) {
  const isolated = self.crossOriginIsolated === true && typeof SharedArrayBuffer !== 'undefined';
  const kind = isolated ? 'threaded' : 'single';
  generation = isolated && gen ? new Int32Array(gen) : null;
  const url = new URL(`wasm/${kind}/igscope.mjs`, base).href;
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
  const module = await createIgscope(options);
  engine = new module.Engine(0);
  info = { ...parse(engine.buildInfo()), build: kind, crossOriginIsolated: isolated };
  return info;
}

function schedule() {
  if (scheduled || busy) return;
  scheduled = true;
  // Run after the messages already queued have been delivered, so a burst of
  // requests collapses into its newest one.
  setTimeout(run, 0);
}

function stale(id) {
  if (generation && Atomics.load(generation, 0) !== id) return true;
  return job !== null && job.id > id;
}

async function run() {
  scheduled = false;
  if (!engine) return;
  busy = true;
  try {
    while (setup.length) {
      const msg = setup.shift();
      self.postMessage({ type: msg.type, seq: msg.seq, result: runSetup(msg) });
    }
    if (job) {
      const current = job;
      job = null;
      if (current.type === 'explain') await runExplain(current);
      else if (current.type === 'gallery') await runGallery(current);
    }
    for (const [type, current] of [...lanes]) {
      lanes.delete(type);
      // Isolated pages: the client's shared counter has this lane's newest id
      // while the module runs; otherwise only requests already delivered count.
      const stop = generation
        ? () => Atomics.load(generation, LANE_SLOTS[type]) !== current.id
        : () => lanes.has(type) && lanes.get(type).id > current.id;
      const text =
        type === 'conductance'
          ? engine.conductance(current.input, JSON.stringify(current.request), stop)
          : engine.explainTabular(current.raw, JSON.stringify(current.request), stop);
      self.postMessage({ type, id: current.id, text });
    }
  } finally {
    busy = false;
  }
  if (setup.length || job || lanes.size) schedule();
}

function runSetup(msg) {
  switch (msg.type) {
    case 'model':
      return parse(engine.loadModel(new Uint8Array(msg.bytes)));
    case 'dataset':
      return parse(engine.setDataset(msg.pixels));
    case 'baselineImage':
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

async function runExplain({ id, input, request }) {
  if (stale(id)) {
    stats.skipped += 1;
    return;
  }
  self.postMessage({ type: 'started', id });
  const text = engine.explain(input, JSON.stringify(request), () => stale(id));
  if (text === '{"cancelled":true}') stats.cancelled += 1;
  self.postMessage({ type: 'explain', id, text, stats: { ...stats } });
}

async function runGallery({ id, input, items }) {
  for (const item of items) {
    // Yield between items so a newer request that arrived meanwhile wins
    // even where no shared counter can cancel a computation in flight.
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (stale(id)) return;
    const text = engine.explain(input, JSON.stringify(item.request), () => stale(id));
    if (text === '{"cancelled":true}') stats.cancelled += 1;
    self.postMessage({ type: 'gallery', id, key: item.key, text });
  }
  self.postMessage({ type: 'galleryDone', id });
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'init') {
    ready = init(msg).then(
      (i) => {
        self.postMessage({ type: 'ready', info: i });
        schedule();
      },
      (e) => self.postMessage({ type: 'fatal', message: `could not start the WebAssembly module: ${e && e.message ? e.message : e}` }),
    );
    return;
  }
  if (msg.type === 'explain' || msg.type === 'gallery') {
    if (!job || msg.id > job.id) {
      if (job) stats.skipped += 1;
      job = msg;
    }
  } else if (msg.type === 'conductance' || msg.type === 'tabular') {
    const queued = lanes.get(msg.type);
    if (!queued || msg.id > queued.id) lanes.set(msg.type, msg);
  } else {
    setup.push(msg);
  }
  schedule();
};
