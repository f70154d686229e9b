// Module worker running one igscope WebAssembly build (threaded or single),
// so that its blocking calls (thread joins) never run on the page's main
// thread. Messages: {op:'init', kind, model:ArrayBuffer} -> build info and
// architecture; {op:'time', pixels, request, runs, minMs} -> per-run
// milliseconds and the last result.
let engine = null;

async function init(kind, model) {
  const url = new URL(`/wasm/${kind}/igscope.mjs`, self.location.origin).href;
  const { default: createIgscope } = await import(/* @vite-ignore */ url);
  const M = await createIgscope();
  engine = new M.Engine(0);
  const info = JSON.parse(engine.buildInfo());
  const arch = JSON.parse(engine.loadModel(new Uint8Array(model)));
  if (arch.error) throw new Error(`loadModel: ${arch.error}`);
  const layers = JSON.parse(engine.layers());
  const macs = (layers.layers ?? layers).reduce((s, l) => s + l.multiply_adds, 0);
  return { info, architecture: arch, macsPerForward: macs };
}

function explainOnce(pixels, request) {
  const t0 = performance.now();
  const r = JSON.parse(engine.explain(pixels, request, null));
  const ms = performance.now() - t0;
  if (r.error) throw new Error(`explain: ${r.error}`);
  return { ms, result: r };
}

// Runs until both `runs` runs and `minMs` milliseconds are reached (at most
// 10 x runs).
function time(pixels, request, runs, minMs) {
  const ms = [];
  const inner = [];
  let last = null;
  const start = performance.now();
  while (ms.length < runs || (performance.now() - start < minMs && ms.length < 10 * runs)) {
    const { ms: t, result } = explainOnce(pixels, request);
    ms.push(t);
    inner.push(result.milliseconds);
    last = result;
  }
  return { ms, inner, result: last };
}

self.onmessage = async (e) => {
  const { id, op } = e.data;
  try {
    let value;
    if (op === 'init') value = await init(e.data.kind, e.data.model);
    else if (op === 'time') value = time(e.data.pixels, e.data.request, e.data.runs, e.data.minMs);
    else throw new Error(`unknown op ${op}`);
    self.postMessage({ id, ok: true, value });
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err && err.stack ? err.stack : err) });
  }
};
