// The page's side of the worker (worker.js): posts requests with increasing
// ids, cancels the one in flight through a shared generation counter when the
// page is cross-origin isolated, and hands back only results that are still
// current. Nothing here blocks the page. `base` is the URL of the folder that
// holds wasm/threaded/ and wasm/single/ (the page's root, or the widget
// package's root).
import { GENERATION_SLOTS, LANE_SLOTS } from './generation.js';

const HERE = import.meta.url;

// A worker script must come from the page's origin. When these modules are
// served from another one (a widget package on a CDN that allows CORS), the
// worker starts from a same-origin blob that imports the real worker.js.
function startWorker() {
  const url = new URL('./worker.js', HERE);
  if (url.origin === location.origin) return new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  const shim = URL.createObjectURL(new Blob([`import ${JSON.stringify(url.href)};`], { type: 'text/javascript' }));
  return new Worker(shim, { type: 'module' });
}

// A module result (a JSON string) as an object; text that is not JSON
// becomes an {error}.
export function parseResult(text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    return { error: 'the module returned a result that is not JSON' };
  }
}

export class EngineClient {
  constructor({ base }) {
    this.worker = startWorker();
    this.nextId = 1;
    this.nextSeq = 1;
    this.waiting = new Map();
    this.latest = { explain: 0, gallery: 0, conductance: 0, tabular: 0 };
    this.nextLaneId = 1;
    this.stats = { skipped: 0, cancelled: 0, stale: 0 };
    this.handlers = {
      explain: () => {},
      gallery: () => {},
      galleryDone: () => {},
      started: () => {},
      conductance: () => {},
      tabular: () => {},
    };
    this.generation =
      self.crossOriginIsolated && typeof SharedArrayBuffer !== 'undefined'
        ? new Int32Array(new SharedArrayBuffer(4 * GENERATION_SLOTS))
        : null;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.worker.onmessage = (e) => this.receive(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.rejectReady(new Error(`the worker failed: ${e.message || 'unknown error'}`));
    };
    this.worker.postMessage({ type: 'init', base: new URL(base, location.href).href, generation: this.generation ? this.generation.buffer : null });
  }

  on(type, handler) {
    this.handlers[type] = handler;
  }

  receive(msg) {
    switch (msg.type) {
      case 'ready':
        this.resolveReady(msg.info);
        break;
      case 'fatal':
        this.rejectReady(new Error(msg.message));
        break;
      case 'started':
        this.handlers.started(msg.id);
        break;
      case 'explain':
        this.stats = { ...msg.stats, stale: this.stats.stale + (msg.id === this.latest.explain ? 0 : 1) };
        if (msg.id === this.latest.explain) this.handlers.explain(msg.id, msg.text);
        break;
      case 'gallery':
        if (msg.id === this.latest.gallery) this.handlers.gallery(msg.id, msg.key, msg.text);
        break;
      case 'conductance':
      case 'tabular':
        if (msg.id === this.latest[msg.type]) this.handlers[msg.type](msg.id, msg.text);
        break;
      case 'galleryDone':
        if (msg.id === this.latest.gallery) this.handlers.galleryDone(msg.id);
        break;
      default: {
        const resolve = this.waiting.get(msg.seq);
        if (resolve) {
          this.waiting.delete(msg.seq);
          resolve(msg.result);
        }
      }
    }
  }

  // Setup calls (model, dataset, baselineImage, predictAll) run in order and
  // resolve with the module's parsed JSON.
  call(type, payload, transfer = []) {
    const seq = this.nextSeq++;
    return new Promise((resolve) => {
      this.waiting.set(seq, resolve);
      this.worker.postMessage({ type, seq, ...payload }, transfer);
    });
  }

  // Also cancels the computation in flight: its result would be for the
  // previous model.
  loadModel(bytes) {
    this.bump();
    return this.call('model', { bytes }, [bytes]);
  }

  setDataset(pixels) {
    return this.call('dataset', { pixels });
  }

  setBaselineImage(pixels) {
    return this.call('baselineImage', { pixels });
  }

  predictAll(pixels) {
    return this.call('predictAll', { pixels });
  }

  layers() {
    return this.call('layers', {});
  }

  loadTabularModel(bytes) {
    return this.call('tabularModel', { bytes }, [bytes]);
  }

  setTabularRows(values) {
    return this.call('tabularRows', { values });
  }

  // The views' jobs: latest wins within each lane; they neither cancel nor
  // get cancelled by the page's attribution.
  lane(type, payload) {
    const id = this.nextLaneId++;
    this.latest[type] = id;
    if (this.generation) Atomics.store(this.generation, LANE_SLOTS[type], id);
    this.worker.postMessage({ type, id, ...payload });
    return id;
  }

  conductance(input, request) {
    return this.lane('conductance', { input, request });
  }

  explainTabular(raw, request) {
    return this.lane('tabular', { raw, request });
  }

  bump() {
    const id = this.nextId++;
    if (this.generation) Atomics.store(this.generation, 0, id);
    return id;
  }

  // A new attribution: any older job (attribution or gallery) is cancelled.
  explain(input, request) {
    const id = this.bump();
    this.latest.explain = id;
    this.worker.postMessage({ type: 'explain', id, input, request });
    return id;
  }

  gallery(input, items) {
    const id = this.bump();
    this.latest.gallery = id;
    this.worker.postMessage({ type: 'gallery', id, input, items });
    return id;
  }
}
