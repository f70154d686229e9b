// The page's side of the worker (worker.js). Setup calls (model, data set,
// layers ...) resolve with the module's parsed JSON, in order. Jobs go
// through lanes (latest.js): `lane(onMessage)` opens one, and onMessage sees
// only the messages of the lane's newest request ({type: 'started' | 'explain'
// | 'gallery' | 'galleryDone' | 'conductance' | 'tabular', id, text, key}).
// Nothing here blocks the page. `base` is the URL of the folder that holds
// wasm/threaded/ and wasm/single/ (the page's root, or the widget package's
// root).
import { LaneIds, SHARED_SLOTS } from './latest.js';

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
    this.nextSeq = 1;
    this.waiting = new Map();
    this.handlers = [];
    // Jobs dropped before they ran and computations stopped in flight (the
    // worker's counts), and results that came for a request no longer the
    // newest of its lane.
    this.stats = { skipped: 0, cancelled: 0, stale: 0 };
    const shared =
      self.crossOriginIsolated && typeof SharedArrayBuffer !== 'undefined'
        ? new Int32Array(new SharedArrayBuffer(4 * SHARED_SLOTS))
        : null;
    this.ids = new LaneIds(shared, (msg, transfer) => this.worker.postMessage(msg, transfer));
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.worker.onmessage = (e) => this.receive(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.rejectReady(new Error(`the worker failed: ${e.message || 'unknown error'}`));
    };
    this.worker.postMessage({ type: 'init', base: new URL(base, location.href).href, shared: shared ? shared.buffer : null });
  }

  // A new lane; onMessage(msg) gets the messages of its newest request only.
  lane(onMessage) {
    const lane = this.ids.open();
    this.handlers[lane.index] = onMessage;
    return lane;
  }

  receive(msg) {
    switch (msg.type) {
      case 'ready':
        this.resolveReady(msg.info);
        return;
      case 'fatal':
        this.rejectReady(new Error(msg.message));
        return;
    }
    if (msg.lane === undefined) {
      const resolve = this.waiting.get(msg.seq);
      if (resolve) {
        this.waiting.delete(msg.seq);
        resolve(msg.result);
      }
      return;
    }
    if (msg.stats) this.stats = { ...msg.stats, stale: this.stats.stale };
    if (this.ids.lanes[msg.lane].isNewest(msg.id)) this.handlers[msg.lane](msg);
    else if (msg.text !== undefined) this.stats.stale += 1;
  }

  call(type, payload, transfer = []) {
    const seq = this.nextSeq++;
    return new Promise((resolve) => {
      this.waiting.set(seq, resolve);
      this.worker.postMessage({ type, seq, ...payload }, transfer);
    });
  }

  // A model file's bytes (taken over): an igscope model file, or an ONNX
  // model when `onnx` holds its import options ({inputRange, mean, std}).
  loadModel(bytes, onnx = null) {
    return this.call('model', { bytes, onnx }, [bytes]);
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

  // A model file (bytes, taken over) or training images (pixels) that jobs
  // name by `key` in their needs; the worker keeps them.
  provide(kind, key, data, transfer = []) {
    this.worker.postMessage({ type: 'provide', kind, key, data }, transfer);
  }
}
