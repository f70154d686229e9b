// The browser benchmark page: one 32-step Gauss-Legendre IG of one
// Fashion-MNIST test image on fashion_cnn_v1 (or the model named by the
// "model" parameter: fashion_resnet), timed in this one page for
// igscope's threaded and single-threaded WebAssembly builds (each in its own
// module worker) and for TensorFlow.js with each backend that starts. The
// engines are timed in interleaved rounds, so a slow spell of a shared
// machine spreads over all of them. Results go to window.__benchResult
// (run.mjs reads them) and to the table on the page.
//
// URL parameters: model (a file of models/, fashion_cnn_v1.safetensors), steps (32), image (position in test_sample.json, 0),
// rounds (3), runs (minimum runs per engine per round, 5), minMs (minimum
// time per engine per round, 1000), warmup (3), backends (tfjs backends,
// "wasm,wasm+firstmax,webgl,cpu"; "+firstmax" and "+lastmax"
// give each max-pool window's gradient to its first or last maximum instead
// of using TF.js's MaxPoolGrad kernel, see tfjs-ig.js), engines (igscope builds, "threaded-relaxed,threaded,single"),
// tfjsThreads (threads for TF.js's wasm backend, default one per core).
import * as tf from '@tensorflow/tfjs';
import { setThreadsCount, setWasmPaths, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { gaussLegendre01, integratedGradients, makeGraphModel, makeModel, parseSafetensors } from './tfjs-ig.js';

const params = new URLSearchParams(location.search);
const num = (k, d) => (params.has(k) ? Number(params.get(k)) : d);
const list = (k, d) => (params.get(k) ?? d).split(',').filter(Boolean);
const config = {
  model: params.get('model') ?? 'fashion_cnn_v1.safetensors',
  steps: num('steps', 32),
  image: num('image', 0),
  rounds: num('rounds', 3),
  runs: num('runs', 5),
  minMs: num('minMs', 1000),
  warmup: num('warmup', 3),
  backends: list('backends', 'wasm,wasm+firstmax,webgl,cpu'),
  engines: list('engines', 'threaded-relaxed,threaded,single'),
  tfjsThreads: num('tfjsThreads', navigator.hardwareConcurrency || 1),
};

const logEl = document.getElementById('log');
const statusEl = document.getElementById('status');
function log(msg) {
  console.log(msg);
  logEl.textContent += msg + '\n';
}

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// max |a - b| / max |b|
function relDiff(a, b) {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; ++i) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

class WorkerEngine {
  constructor(kind) {
    this.kind = kind;
    this.worker = new Worker(new URL('./igscope-worker.js', import.meta.url), { type: 'module' });
    this.pending = new Map();
    this.nextId = 1;
    this.worker.onmessage = (e) => {
      const p = this.pending.get(e.data.id);
      this.pending.delete(e.data.id);
      if (e.data.ok) p.resolve(e.data.value);
      else p.reject(new Error(`igscope ${this.kind}: ${e.data.error}`));
    };
    this.worker.onerror = (e) => {
      for (const p of this.pending.values()) p.reject(new Error(`igscope ${this.kind} worker: ${e.message}`));
      this.pending.clear();
    };
  }
  call(msg) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }
}

// Free cores for this page: a fixed loop's rate in two workers at once over
// its rate in one (2.0 when both cores of a 2-core machine are free).
async function freeCores(ms = 300) {
  const run = (w) =>
    new Promise((resolve) => {
      w.onmessage = (e) => resolve(e.data.n);
      w.postMessage({ ms });
    });
  const workers = [0, 1].map(() => new Worker(new URL('./spin-worker.js', import.meta.url), { type: 'module' }));
  await Promise.all(workers.map((w) => run(w)));
  const one = await run(workers[0]);
  const both = await Promise.all(workers.map((w) => run(w)));
  for (const w of workers) w.terminate();
  return (both[0] + both[1]) / one;
}

async function main() {
  const result = {
    config,
    userAgent: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated: self.crossOriginIsolated,
    tfjsVersion: tf.version.tfjs,
    engines: [],
  };
  log(`crossOriginIsolated=${self.crossOriginIsolated} cores=${navigator.hardwareConcurrency} tfjs=${tf.version.tfjs}`);

  const [modelBuf, sample] = await Promise.all([
    fetch(`/models/${config.model}`).then((r) => r.arrayBuffer()),
    fetch('/data/test_sample.json').then((r) => r.json()),
  ]);
  const img = sample.images[config.image];
  const pixels = Float32Array.from(img.pixels, (v) => v / 255);
  result.image = { position: config.image, index: img.index, label: img.label };
  const { tensors, metadata } = parseSafetensors(modelBuf);
  const architecture = JSON.parse(metadata.architecture);
  const nodes = gaussLegendre01(config.steps);

  // The candidates, each with prepare() (initialise, warm up, first result)
  // and time(runs, minMs) -> per-run ms.
  const candidates = [];
  for (const kind of config.engines) {
    const entry = { name: `igscope ${kind}`, kind: 'igscope', build: kind };
    const w = new WorkerEngine(kind);
    let request = null;
    entry.prepare = async () => {
      const { info, macsPerForward } = await w.call({ op: 'init', kind, model: modelBuf.slice(0) });
      result.macsPerForward = macsPerForward;
      entry.threads = info.threads;
      entry.info = info;
      // Target: the predicted class (igscope's -1), then fixed for the runs.
      const probe = JSON.stringify({ method: 'ig', baseline: 'black', steps: config.steps, quadrature: 'gausslegendre', target: -1 });
      const first = await w.call({ op: 'time', pixels, request: probe, runs: 1, minMs: 0 });
      entry.target = first.result.target;
      request = JSON.stringify({ method: 'ig', baseline: 'black', steps: config.steps, quadrature: 'gausslegendre', target: entry.target });
      const warm = await w.call({ op: 'time', pixels, request, runs: config.warmup, minMs: 0 });
      entry.attributions = Float32Array.from(warm.result.attributions.flat());
      entry.fInput = warm.result.f_input;
      entry.fBaseline = warm.result.f_baseline;
    };
    entry.time = async (runs, minMs) => {
      const r = await w.call({ op: 'time', pixels, request, runs, minMs });
      (entry.inner ??= []).push(...r.inner);
      return r.ms;
    };
    candidates.push(entry);
  }

  setWasmPaths('/tfjs-wasm/');
  setThreadsCount(config.tfjsThreads);
  let wasmStarted = false;
  for (const spec of config.backends) {
    // "wasm", "wasm+firstmax", "cpu+lastmax": the backend, and the max-pool
    // gradient (tfjs-ig.js).
    const [backend, variant] = spec.split('+');
    const pool = variant ?? 'native';
    const entry = { name: `tfjs ${spec}`, kind: 'tfjs', build: spec, backend, pool };
    let model = null;
    entry.prepare = async () => {
      // TF.js's wasm backend sizes its XNNPACK thread pool once, when the
      // module starts, as min(setThreadsCount's value,
      // navigator.hardwareConcurrency / 2): one thread on a 2-core machine.
      // To give it as many threads as igscope's threaded build, the page
      // reports 2 x tfjsThreads cores while the module starts.
      const cores = navigator.hardwareConcurrency || 1;
      const override = backend === 'wasm' && !wasmStarted && config.tfjsThreads > Math.floor(cores / 2);
      const restore = override ? Object.getOwnPropertyDescriptor(Navigator.prototype, 'hardwareConcurrency') : null;
      if (override) {
        Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { configurable: true, get: () => 2 * config.tfjsThreads });
        entry.coresReportedToTfjs = 2 * config.tfjsThreads;
      }
      let ok;
      if (backend === 'wasm') wasmStarted = true;
      try {
        ok = await tf.setBackend(backend);
        await tf.ready();
      } finally {
        if (override) Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', restore);
      }
      if (!ok) throw new Error(`tf.setBackend('${backend}') returned false`);
      if (backend === 'wasm') {
        entry.threads = getThreadsCount();
        entry.simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
        entry.multithread = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
      } else if (backend === 'webgl') {
        entry.threads = null;
        const gl = tf.backend().gpgpu && tf.backend().gpgpu.gl;
        if (gl) {
          const ext = gl.getExtension('WEBGL_debug_renderer_info');
          entry.renderer = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
        }
        entry.webglVersion = tf.env().get('WEBGL_VERSION');
      } else {
        entry.threads = 1;
      }
      model = architecture.nodes ? makeGraphModel(tf, tensors, architecture) : makeModel(tf, tensors, { pool });
      entry.target = candidates[0].target ?? -1;
      if (entry.target < 0) {
        const logits = tf.tidy(() => model.forward(tf.tensor4d(pixels, [1, 28, 28, 1]))).dataSync();
        entry.target = logits.indexOf(Math.max(...logits));
      }
      let r = null;
      for (let i = 0; i < Math.max(1, config.warmup); ++i) r = integratedGradients(tf, model, pixels, entry.target, nodes);
      entry.attributions = r.attributions;
      entry.fInput = r.fInput;
      entry.fBaseline = r.fBaseline;
    };
    entry.time = async (runs, minMs) => {
      if (tf.getBackend() !== backend) await tf.setBackend(backend);
      const ms = [];
      const start = performance.now();
      while (ms.length < runs || (performance.now() - start < minMs && ms.length < 10 * runs)) {
        const t0 = performance.now();
        integratedGradients(tf, model, pixels, entry.target, nodes);
        ms.push(performance.now() - t0);
      }
      return ms;
    };
    candidates.push(entry);
  }

  const ready = [];
  for (const c of candidates) {
    statusEl.textContent = `preparing ${c.name}`;
    try {
      const t0 = performance.now();
      await c.prepare();
      log(`${c.name}: ready in ${(performance.now() - t0).toFixed(0)} ms, threads ${c.threads}, target ${c.target}` +
        (c.renderer ? `, renderer ${c.renderer}` : ''));
      ready.push(c);
    } catch (err) {
      c.error = String(err && err.message ? err.message : err);
      log(`${c.name}: FAILED: ${c.error}`);
    }
  }
  if (!ready.some((c) => c.kind === 'igscope')) throw new Error('no igscope build could run');
  const reference = ready.find((c) => c.kind === 'igscope');

  result.freeCoresBefore = await freeCores();
  log(`free cores before: ${result.freeCoresBefore.toFixed(2)}`);
  for (let round = 0; round < config.rounds; ++round) {
    for (const c of ready) {
      statusEl.textContent = `round ${round + 1}/${config.rounds}: ${c.name}`;
      // A slow engine (TF.js cpu) gets at least 2 runs a round, not 5.
      const slow = c.samples && median(c.samples) > 500;
      const ms = await c.time(slow ? 2 : config.runs, slow ? 0 : config.minMs);
      (c.samples ??= []).push(...ms);
      (c.rounds ??= []).push(ms);
      log(`round ${round + 1} ${c.name}: ${ms.length} runs, median ${median(ms).toFixed(2)} ms`);
    }
  }

  result.freeCoresAfter = await freeCores();
  log(`free cores after: ${result.freeCoresAfter.toFixed(2)}`);
  const threaded = ready.find((c) => c.build === 'threaded');
  const threadedMedian = threaded ? median(threaded.samples) : null;
  for (const c of candidates) {
    const out = {
      name: c.name,
      kind: c.kind,
      build: c.build,
      threads: c.threads ?? null,
    };
    for (const k of ['info', 'backend', 'pool', 'simd', 'multithread', 'coresReportedToTfjs', 'renderer', 'webglVersion']) if (c[k] !== undefined) out[k] = c[k];
    if (c.error) {
      out.error = c.error;
    } else {
      out.target = c.target;
      out.runs = c.samples.length;
      out.msMedian = median(c.samples);
      out.msMin = Math.min(...c.samples);
      out.samples = c.samples;
      out.roundMedians = c.rounds.map(median);
      if (c.inner) out.msMedianInside = median(c.inner);
      out.speedupOfThreaded = threadedMedian ? out.msMedian / threadedMedian : null;
      out.maxRelDiff = c === reference ? 0 : relDiff(c.attributions, reference.attributions);
      out.agrees = out.maxRelDiff <= 1e-3;
      out.maxRelDiffTo = Object.fromEntries(ready.filter((o) => o !== c).map((o) => [o.name, relDiff(c.attributions, o.attributions)]));
      out.fInput = c.fInput;
      out.fBaseline = c.fBaseline;
      out.attributionSum = c.attributions.reduce((s, v) => s + v, 0);
    }
    result.engines.push(out);
  }
  result.reference = reference.name;
  return result;
}

function render(result) {
  const table = document.getElementById('results');
  const rows = [['engine', 'threads', 'ms median', 'ms min', 'x igscope threaded', 'max diff']];
  for (const e of result.engines) {
    if (e.error) rows.push([e.name, '', 'error', '', '', e.error]);
    else rows.push([e.name, e.threads, e.msMedian.toFixed(2), e.msMin.toFixed(2), e.speedupOfThreaded?.toFixed(1), e.maxRelDiff.toExponential(1)]);
  }
  table.innerHTML = rows
    .map((r, i) => `<tr>${r.map((c) => (i ? `<td>${c}</td>` : `<th>${c}</th>`)).join('')}</tr>`)
    .join('');
}

main().then(
  (result) => {
    window.__benchResult = result;
    render(result);
    statusEl.textContent = 'done';
  },
  (err) => {
    window.__benchError = String(err && err.stack ? err.stack : err);
    statusEl.textContent = `error: ${window.__benchError}`;
    console.error(window.__benchError);
  },
);
