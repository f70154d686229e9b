// Browser tests of the embeddable widget, called by run.mjs. The
// packed widget (build-web/widget, what `npm pack` ships) is served by a plain
// static file server, once without and once with the COOP/COEP headers, and
// its docs example (two widgets in running text) is opened in Chromium.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { check, runSteps } from './checks.mjs';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.safetensors': 'application/octet-stream',
  '.png': 'image/png',
};

const DOCS = 'examples/docs-example.html';
// Rules a docs site might carry, made as hostile as possible to anything
// inside the widget: resets, fonts, hidden canvases and form controls, and the
// very class names the widget uses inside its shadow root.
const HOSTILE_CSS = `
* { all: unset !important; color: red !important; font: italic 31px/4 "Comic Sans MS", cursive !important;
  letter-spacing: 3px !important; text-transform: uppercase !important; box-sizing: content-box !important; }
html, body, p, div, h1 { display: block !important; }
div { margin: 40px !important; padding: 20px !important; border: 9px dashed lime !important; }
canvas, img, svg { display: none !important; width: 3px !important; filter: invert(1) !important; }
figure, figcaption, label, span, dl, dt, dd, output, select, input { display: none !important;
  margin: 40px !important; padding: 20px !important; border: 9px dashed lime !important; }
select, input { appearance: none !important; background: yellow !important; }
[class], [part] { background: orange !important; }
.root, .maps, .cell, .heatmap, .input, .controls, .kind, .param, .numbers, .status { display: none !important; }
`;

// A plain static server for `root` (no caching headers, no rewriting). It
// counts requests per path; `isolated` adds COOP/COEP (and CORP, so the
// files themselves may load under COEP); `extra` maps paths to generated
// pages.
// `cors` serves the files to any origin (as a CDN would).
// extra: in-memory pages by path; mounts: files outside root by path.
function staticServer(root, { isolated = false, cors = false, extra = {}, mounts = {} } = {}) {
  const counts = new Map();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const rel = decodeURIComponent(url.pathname);
    counts.set(rel, (counts.get(rel) || 0) + 1);
    const headers = {};
    if (isolated) {
      headers['Cross-Origin-Opener-Policy'] = 'same-origin';
      headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
      headers['Cross-Origin-Resource-Policy'] = 'same-origin';
    }
    if (cors) {
      headers['Access-Control-Allow-Origin'] = '*';
      headers['Cross-Origin-Resource-Policy'] = 'cross-origin';
    }
    if (extra[rel]) {
      res.writeHead(200, { ...headers, 'Content-Type': TYPES['.html'] });
      res.end(extra[rel]);
      return;
    }
    const file = mounts[rel] || path.join(root, rel);
    if (!(mounts[rel] || file.startsWith(root + path.sep)) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}/`,
        counts,
        close: () => new Promise((r) => server.close(r)),
      });
    });
  });
}

function watch(page, label, errors, requests) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`${label} console: ${msg.text()} (${msg.location().url || ''})`);
  });
  page.on('pageerror', (err) => errors.push(`${label} pageerror: ${err.message}`));
  page.context().on('request', (req) => requests.push(req.url()));
}

async function allDone(page, timeout = 120000) {
  await page.waitForFunction(
    () => {
      const all = Array.from(document.querySelectorAll('igscope-explorer'));
      if (all.some((e) => e.state === 'error')) return true;
      return all.length > 0 && all.every((e) => e.state === 'done');
    },
    null,
    { timeout },
  );
}

// The widgets' state as the tests read it: results, build, status text and
// whether the heatmap canvas has a picture (not one flat colour).
function widgets(page) {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('igscope-explorer'), (el) => {
      const c = el.shadowRoot.querySelector('.heatmap');
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const colours = new Set();
      for (let i = 0; i < px.length; i += 4 * 37) colours.add(`${px[i]},${px[i + 1]},${px[i + 2]}`);
      const r = el.result;
      return {
        id: el.id,
        state: el.state,
        error: el.shadowRoot.querySelector('.error').hidden ? null : el.shadowRoot.querySelector('.error').textContent,
        info: el.engineInfo,
        status: el.shadowRoot.querySelector('.status').textContent,
        colours: colours.size,
        canvas: [c.width, c.height, getComputedStyle(c).display],
        result: r && {
          baseline: r.baseline,
          gap: r.gap,
          relative_gap: r.relative_gap,
          predicted_name: r.predicted_name,
          target: r.target,
          steps: r.steps,
          attributions: r.attributions,
        },
      };
    }),
  );
}

function maxAbsDiff(a, b) {
  const fa = a.flat(Infinity);
  const fb = b.flat(Infinity);
  if (fa.length !== fb.length) return Infinity;
  let m = 0;
  for (let i = 0; i < fa.length; ++i) m = Math.max(m, Math.abs(fa[i] - fb[i]));
  return m;
}

// What each part of the widget looks like: screenshots of the parts that do
// not hold a timing, and the sizes and computed styles of the shadow tree.
// For the screenshots each widget is pinned to the same whole-pixel spot, so
// text is rasterised alike on both pages.
async function appearance(page) {
  const out = {};
  for (const id of ['black', 'blur']) {
    const host = page.locator(`#${id}`);
    const pin = await page.addStyleTag({
      content: `#${id} { position: fixed !important; left: 10px !important; top: 10px !important; z-index: 2147483647 !important; }`,
    });
    const parts = {};
    for (const sel of ['.maps', '.controls', '.numbers']) {
      const loc = host.locator(sel);
      parts[sel] = (await loc.isVisible()) ? (await loc.screenshot({ animations: 'disabled' })).toString('base64') : 'hidden';
    }
    await pin.evaluate((el) => el.remove());
    out[id] = {
      parts,
      styles: await host.evaluate((el) => {
        const pick = (e) => {
          const s = getComputedStyle(e);
          const b = e.getBoundingClientRect();
          return [s.display, s.color, s.fontFamily, s.fontSize, s.lineHeight, s.fontStyle, s.textTransform, s.letterSpacing,
            s.margin, s.padding, s.borderTopWidth, s.backgroundColor, b.width, b.height].join('|');
        };
        const hostBox = el.getBoundingClientRect();
        return [`host ${getComputedStyle(el).display} ${hostBox.width}x${hostBox.height}`,
          ...Array.from(el.shadowRoot.querySelectorAll('*:not(style)'), pick)];
      }),
    };
  }
  return out;
}

// The package's index.d.ts types a typical use (widget-types.ts) under
// tsc --strict, with 'igscope-explorer' resolved to the assembled package.
async function types({ root, dir }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'igscope-types-'));
  const config = {
    compilerOptions: {
      strict: true, noEmit: true, target: 'es2022', module: 'es2022', moduleResolution: 'bundler',
      lib: ['es2022', 'dom'], types: [], paths: { 'igscope-explorer': [dir] },
    },
    files: [path.join(root, 'tests/browser/widget-types.ts')],
  };
  fs.writeFileSync(path.join(tmp, 'tsconfig.json'), JSON.stringify(config));
  try {
    execFileSync(path.join(root, 'node_modules/.bin/tsc'), ['-p', path.join(tmp, 'tsconfig.json')], { encoding: 'utf8' });
    check('widget: index.d.ts types the element, its API and events (tsc --strict)', true);
  } catch (e) {
    check('widget: index.d.ts types the element, its API and events (tsc --strict)', false, `${e.stdout || ''}${e.message}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- no COOP/COEP: the single-threaded build --------------------------------
// Named steps, run in order; `s` carries the servers, the pages and what a
// step found for the steps after it.

async function docsExample(s) {
  s.context = await s.browser.newContext({ viewport: { width: 1000, height: 1400 } });
  await s.context.addInitScript(() => {
    window.__igscopeEvents = [];
    document.addEventListener('igscope-result', (e) =>
      window.__igscopeEvents.push({ id: e.target.id, gap: e.detail.gap, relativeGap: e.detail.relativeGap, build: e.detail.build }),
    );
  });
  const page = await s.context.newPage();
  s.page = page;
  watch(page, 'widget, not isolated', s.errors, s.requests);
  await page.goto(s.plain.url + DOCS);
  await allDone(page);
  s.firstCounts = new Map(s.plain.counts);
  const w = await widgets(page);
  const isolatedFlag = await page.evaluate(() => self.crossOriginIsolated);
  check('widget: the docs example on a plain static server is not cross-origin isolated', isolatedFlag === false);
  check(
    'widget: both widgets render a heatmap',
    w.length === 2 && w.every((x) => x.state === 'done' && x.colours > 3 && x.canvas[2] === 'block'),
    w.map((x) => `${x.id}: ${x.state}${x.error ? ` (${x.error})` : ''}, ${x.colours} colours`).join('; '),
  );
  check(
    'widget: both report the single-threaded build',
    w.every((x) => x.info && x.info.build === 'single' && x.info.threads === 1 && /single-threaded build/.test(x.status)),
    w.map((x) => x.status).join(' | '),
  );
  const [black, blur] = w;
  s.black = black;
  check(
    'widget: the baselines are the ones in the attributes (black, blur:4), and the maps differ',
    black.result.baseline === 'black' && blur.result.baseline === 'blur:4' && maxAbsDiff(black.result.attributions, blur.result.attributions) > 1e-3,
  );
  const events = await page.evaluate(() => window.__igscopeEvents);
  check(
    'widget: each widget fires igscope-result with the completeness gap',
    ['black', 'blur'].every((id) => events.some((e) => e.id === id && Number.isFinite(e.gap) && e.build === 'single')),
    events.map((e) => `${e.id}: gap ${(100 * Math.abs(e.relativeGap)).toFixed(2)}%`).join(', '),
  );
}

async function nativeCrossCheck({ page, black, native }) {
  if (!native) return;
  const index = await page.evaluate(async () => {
    const r = await fetch('../data/test_sample.json');
    return (await r.json()).images[121].index;
  });
  const ref = native('fashion_cnn_smelu.safetensors', index, black.result.target, 'black');
  const d = maxAbsDiff(black.result.attributions, ref.attributions);
  check(`widget: attributions = native igscope (test:${index}, black) within 1e-4`, d <= 1e-4, `max |diff| ${d.toExponential(2)}`);
}

// A widget whose model attribute names the shipped graph model (a ResNet):
// it computes, and its map equals the native command's.
const GRAPH_MODEL = 'fashion_resnet.safetensors';
const GRAPH_PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module" src="../src/igscope-explorer.js"></script>
<igscope-explorer id="resnet" model="../models/${GRAPH_MODEL}" sample="121" baseline="black" steps="32"></igscope-explorer>`;

async function graphModel(s) {
  if (!s.native) return;
  const page = await s.context.newPage();
  watch(page, 'widget, graph model', s.errors, s.requests);
  await page.goto(s.plain.url + 'examples/resnet.html');
  await allDone(page);
  const [w] = await widgets(page);
  const index = await page.evaluate(async () => (await (await fetch('../data/test_sample.json')).json()).images[121].index);
  const ok = w && w.state === 'done' && w.result;
  const ref = ok ? s.native(GRAPH_MODEL, index, w.result.target, 'black') : null;
  const d = ok ? maxAbsDiff(w.result.attributions, ref.attributions) : Infinity;
  check(
    `widget: model="${GRAPH_MODEL}" (a graph) computes, and its map = native igscope (test:${index}, black) within 1e-4`,
    ok && d <= 1e-4 && w.colours > 3,
    w ? `${w.state}${w.error ? ` (${w.error})` : ''}, max |diff| ${d.toExponential(2)}` : 'no widget',
  );
  await page.close();
}

// An .onnx model attribute, with the import options as attributes: imported
// in the worker, the map is native igscope's on `igscope import`'s file;
// the same file without the options is another model (another map); an
// LSTM's widget shows the importer's refusal.
const ONNX_PAGE = (f) => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module" src="../src/igscope-explorer.js"></script>
<igscope-explorer id="onnx" model="../models/small_mixed.onnx" mean="${f.mean}" std="${f.std}" sample="121" baseline="black" steps="32"></igscope-explorer>
<igscope-explorer id="raw" model="../models/small_mixed.onnx" sample="121" baseline="black" steps="32"></igscope-explorer>
<igscope-explorer id="lstm" model="../models/lstm_tiny.onnx" sample="121"></igscope-explorer>`;

async function onnxModel(s) {
  if (!s.fixture) return;
  const page = await s.context.newPage();
  watch(page, 'widget, onnx model', s.errors, s.requests);
  await page.goto(s.plain.url + 'examples/onnx.html');
  await page.waitForFunction(
    () => Array.from(document.querySelectorAll('igscope-explorer')).every((e) => e.state === 'done' || e.state === 'error'),
    null,
    { timeout: 120000 },
  );
  const [w, raw, lstm] = await widgets(page);
  const index = await page.evaluate(async () => (await (await fetch('../data/test_sample.json')).json()).images[121].index);
  const ok = w && w.state === 'done' && w.result;
  const ref = ok ? s.native(s.fixture.imported, index, w.result.target, 'black') : null;
  const d = ok ? maxAbsDiff(w.result.attributions, ref.attributions) : Infinity;
  const dRaw = ok && raw && raw.result ? maxAbsDiff(raw.result.attributions, ref.attributions) : 0;
  check(
    `widget: model="small_mixed.onnx" mean="${s.fixture.mean}" std="${s.fixture.std}" is imported in the browser, and its map = native igscope on igscope import's file (test:${index}, black) within 1e-4`,
    ok && d <= 1e-4 && w.colours > 3 && dRaw > 1e-2,
    w ? `${w.state}${w.error ? ` (${w.error})` : ''}, max |diff| ${d.toExponential(2)}; without mean and std: ${dRaw.toExponential(2)}` : 'no widget',
  );
  check(
    'widget: an LSTM .onnx shows the importer\'s refusal, naming the operator',
    lstm && lstm.state === 'error' && /LSTM \(node/.test(lstm.error || ''),
    lstm ? `${lstm.state}: ${(lstm.error || '').slice(0, 160)}` : 'no widget',
  );
  await page.close();
}

// Shared worker, module and model: each file once, nothing from elsewhere.
async function sharedFiles({ plain, firstCounts, requests }) {
  const once = ['/models/fashion_cnn_smelu.safetensors', '/wasm/single/igscope.wasm', '/wasm/single/igscope.mjs', '/src/worker.js', '/data/test_sample.json'];
  check(
    'widget: two widgets load the model, the module, the worker and the sample once',
    once.every((p) => firstCounts.get(p) === 1),
    once.map((p) => `${p} ${firstCounts.get(p) || 0}`).join(', '),
  );
  const origin = new URL(plain.url).origin;
  const foreign = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
  check('widget: nothing is fetched from another origin', foreign.length === 0, foreign.join(', '));
  check(
    'widget: the threaded builds are not fetched without isolation',
    !plain.counts.has('/wasm/threaded/igscope.wasm') && !plain.counts.has('/wasm/threaded-relaxed/igscope.wasm'),
  );
}

async function jsApi({ page }) {
  const api = await page.evaluate(async () => {
    const el = document.getElementById('black');
    const next = () => new Promise((resolve) => el.addEventListener('igscope-result', (e) => resolve(e.detail), { once: true }));
    let p = next();
    el.setBaseline('white');
    const white = await p;
    const sample = await (await fetch('../data/test_sample.json')).json();
    p = next();
    await el.setInput(Float32Array.from(sample.images[0].pixels, (v) => v / 255));
    const input = await p;
    p = next();
    el.setBaseline(null);
    const back = await p;
    return { white: white.result.baseline, inputPredicted: input.result.predicted_name, back: back.result.baseline, gap: back.gap };
  });
  check(
    'widget: setBaseline and setInput recompute (events carry the result)',
    api.white === 'white' && api.back === 'black' && typeof api.inputPredicted === 'string' && Number.isFinite(api.gap),
    JSON.stringify(api),
  );
}

// Baselines from training images: fetched only when asked for, once; the
// mean baseline equals the mean image computed here, passed as an image.
async function trainingBaselines({ page, plain }) {
  check('widget: the training images are not fetched until a baseline needs them', !plain.counts.has('/data/train_sample.json'));
  const fromTraining = await page.evaluate(async () => {
    const el = document.getElementById('black');
    // The next result, or the widget's error (then the checks below fail with it).
    const next = () =>
      new Promise((resolve, reject) => {
        el.addEventListener('igscope-result', (e) => resolve(e.detail), { once: true });
        el.addEventListener('igscope-error', (e) => reject(new Error(e.detail.message)), { once: true });
      });
    let p = next();
    el.setBaseline('mean');
    const byName = await p;
    p = next();
    el.setBaseline('train:4');
    const expected = await p;
    const train = await (await fetch('../data/train_sample.json')).json();
    const sum = new Float64Array(784);
    for (const im of train.images) for (let i = 0; i < 784; ++i) sum[i] += im.pixels[i] / 255;
    p = next();
    el.setBaseline(Float32Array.from(sum, (v) => v / train.images.length));
    const byImage = await p;
    p = next();
    el.setBaseline(null);
    await p;
    return {
      names: [byName.result.baseline, expected.result.baseline],
      mean: byName.result.attributions, image: byImage.result.attributions, train: expected.result.attributions,
      fMean: byName.fBaseline, fImage: byImage.fBaseline, trainGap: expected.gap, images: train.images.length,
    };
  });
  const scale = Math.max(...fromTraining.image.flat(Infinity).map(Math.abs));
  const dMean = maxAbsDiff(fromTraining.mean, fromTraining.image) / scale;
  check(
    'widget: baseline "mean" = the mean of the training images given as an image (attributions within 1e-4, F(x\') within 1e-5)',
    fromTraining.names[0] === 'mean' && dMean <= 1e-4 && Math.abs(fromTraining.fMean - fromTraining.fImage) <= 1e-5,
    `${fromTraining.images} images, max diff ${dMean.toExponential(2)} of the largest, F(x') ${fromTraining.fMean} vs ${fromTraining.fImage}`,
  );
  check(
    'widget: baseline "train:4" (expected gradients) computes its own map',
    fromTraining.names[1] === 'train:4' && Number.isFinite(fromTraining.trainGap) && maxAbsDiff(fromTraining.train, fromTraining.mean) > 1e-3,
  );
  check(
    'widget: the training images are fetched once (and once more by this test)',
    plain.counts.get('/data/train_sample.json') === 2,
    `${plain.counts.get('/data/train_sample.json')}`,
  );
}

async function controls({ page }) {
  await page.evaluate(() => {
    const s = document.getElementById('blur').shadowRoot.querySelector('.param');
    for (const v of ['1', '2', '7.5']) {
      s.value = v;
      s.dispatchEvent(new Event('input', { bubbles: true }));
    }
  });
  await page.waitForFunction(() => document.getElementById('blur').state === 'done' && document.getElementById('blur').result.baseline === 'blur:7.5');
  check('widget: the compact widget\'s blur slider recomputes with the final value', true);
  await page.selectOption('#blur .kind', 'gaussian');
  await page.waitForFunction(() => {
    const el = document.getElementById('blur');
    return el.state === 'done' && el.result.baseline.startsWith('gaussian:');
  });
  check('widget: the baseline kind control switches the baseline', true);
  const compact = await page.evaluate(() => {
    const sr = document.getElementById('blur').shadowRoot;
    const visible = (sel) => sr.querySelector(sel).getClientRects().length > 0;
    return { numbers: visible('.numbers'), input: visible('.input'), heatmap: visible('.heatmap'), control: visible('.kind') };
  });
  check('widget: compact mode shows the input, the heatmap and the baseline control only', !compact.numbers && compact.input && compact.heatmap && compact.control, JSON.stringify(compact));
}

// Hostile host CSS: the widgets look the same.
async function hostileCss({ context, plain, errors, requests }) {
  const reference = await context.newPage();
  watch(reference, 'widget, reference', errors, requests);
  await reference.goto(plain.url + DOCS);
  await allDone(reference);
  const before = await appearance(reference);
  const hostilePage = await context.newPage();
  watch(hostilePage, 'widget, hostile CSS', errors, requests);
  await hostilePage.goto(`${plain.url}examples/hostile.html`);
  await allDone(hostilePage);
  const hostileWidgets = await widgets(hostilePage);
  const after = await appearance(hostilePage);
  const bodyFont = await hostilePage.evaluate(() => getComputedStyle(document.body).fontFamily);
  const same = ['black', 'blur'].map((id) => {
    const parts = Object.keys(before[id].parts).filter((k) => before[id].parts[k] !== after[id].parts[k]);
    const styles = before[id].styles.filter((s, i) => s !== after[id].styles[i]);
    const first = before[id].styles.findIndex((s, i) => s !== after[id].styles[i]);
    return { id, parts, styles: styles.length, first: first < 0 ? '' : ` (first: ${before[id].styles[first]} -> ${after[id].styles[first]})` };
  });
  check('widget: the hostile CSS does apply to the host page', /Comic Sans/.test(bodyFont), bodyFont);
  check(
    'widget: hostile host CSS (all: unset, hidden canvases, borders, fonts) leaves both widgets unchanged',
    hostileWidgets.every((x) => x.state === 'done' && x.colours > 3) && same.every((x) => x.parts.length === 0 && x.styles === 0),
    same.map((x) => `${x.id}: ${x.parts.length ? `differs in ${x.parts.join(' ')}` : 'same pixels'}, ${x.styles} style differences${x.first}`).join('; '),
  );
}

// Nor do the widget's styles leak out: host elements of the kinds the
// widget styles keep their computed styles when a widget arrives.
async function stylesStayInside({ context, plain, errors, requests }) {
  const leakPage = await context.newPage();
  watch(leakPage, 'widget, styles out', errors, requests);
  await leakPage.goto(`${plain.url}examples/leak.html`);
  const leak = await leakPage.evaluate(async () => {
    const sel = ['canvas', 'select', 'input', 'output', 'dl', 'dt', 'dd', 'figure', 'figcaption', 'label', 'span', 'div', '.root', '.maps', '.status', '[hidden]'];
    const look = () =>
      sel.map((q) => {
        const c = getComputedStyle(document.querySelector(`#host ${q}`));
        return `${q}: ${c.display} ${c.width} ${c.margin} ${c.padding} ${c.font} ${c.color} ${c.backgroundColor} ${c.borderTopWidth} ${c.imageRendering}`;
      });
    const before = look();
    await import('../src/igscope-explorer.js');
    const el = document.createElement('igscope-explorer');
    document.body.append(el);
    await new Promise((resolve) => el.addEventListener('igscope-result', resolve, { once: true }));
    const after = look();
    return before.filter((b, i) => b !== after[i]).concat(after.filter((a, i) => a !== before[i]));
  });
  check('widget: its styles do not leak out to the host page', leak.length === 0, leak.join(' | '));
}

// ---- COOP/COEP: the threaded build ------------------------------------------

async function isolatedDocsExample(s) {
  // The plain server's pages are done with.
  await s.context?.close();
  s.context = null;
  s.iso = await s.browser.newContext();
  const isoPage = await s.iso.newPage();
  s.isoPage = isoPage;
  watch(isoPage, 'widget, isolated', s.errors, []);
  await isoPage.goto(s.isolated.url + DOCS);
  await allDone(isoPage);
  const wi = await widgets(isoPage);
  const isoFlag = await isoPage.evaluate(() => self.crossOriginIsolated);
  check('widget: the docs example with COOP/COEP is cross-origin isolated', isoFlag === true);
  check(
    'widget: under isolation both widgets run the threaded build with relaxed SIMD and render',
    wi.length === 2 && wi.every((x) => x.state === 'done' && x.colours > 3 && x.info.build === 'threaded-relaxed' && x.info.threads >= 2 && /threaded build, \d+ threads, relaxed SIMD/.test(x.status)),
    wi.map((x) => x.status).join(' | '),
  );
  check(
    'widget: under isolation the model and the module load once',
    ['/models/fashion_cnn_smelu.safetensors', '/wasm/threaded-relaxed/igscope.wasm', '/src/worker.js'].every((p) => s.isolated.counts.get(p) === 1) &&
      !s.isolated.counts.has('/wasm/single/igscope.wasm') && !s.isolated.counts.has('/wasm/threaded/igscope.wasm'),
  );
  const d = maxAbsDiff(wi[0].result.attributions, s.black.result.attributions);
  check('widget: threaded (relaxed SIMD) and single-threaded builds give the same map', d <= 1e-4, `max |diff| ${d.toExponential(2)}`);
}

// Widgets share one worker, each its own lane: another widget's request
// leaves a widget's long computation in flight to finish (were it cancelled,
// no result would come for it).
async function widgetsCancelOnlyTheirOwn({ isoPage }) {
  const r = await isoPage.evaluate(async () => {
    const [a, b] = ['black', 'blur'].map((id) => document.getElementById(id));
    const resultWith = (el, test) =>
      new Promise((resolve, reject) => {
        const on = (e) => {
          if (!test(e.detail.result)) return;
          el.removeEventListener('igscope-result', on);
          resolve(e.detail.result);
        };
        el.addEventListener('igscope-result', on);
        el.addEventListener('igscope-error', (e) => reject(new Error(e.detail.message)), { once: true });
      });
    const long = resultWith(a, (x) => x.steps === 4096);
    a.setAttribute('quadrature', 'riemann_middle');
    a.setAttribute('steps', '4096');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const white = resultWith(b, (x) => x.baseline === 'white');
    b.setBaseline('white');
    const [x, y] = await Promise.all([long, white]);
    const restored = Promise.all([resultWith(a, (z) => z.steps === 32), resultWith(b, (z) => z.baseline === 'blur:4')]);
    a.removeAttribute('quadrature');
    a.setAttribute('steps', '32');
    b.setBaseline(null);
    await restored;
    return { steps: x.steps, quadrature: x.quadrature, other: y.baseline };
  });
  check(
    'widget: another widget\'s request does not cancel a widget\'s computation in flight (one worker, a lane each)',
    r.steps === 4096 && r.quadrature === 'riemann_middle' && r.other === 'white',
    JSON.stringify(r),
  );
}

// The worker stops a lane's computation in flight when a newer request of
// that lane comes (the shared counters of an isolated page): a long layer
// conductance, then a short one while it runs.
async function laneCancelInFlight({ isoPage }) {
  const lane = await isoPage.evaluate(async () => {
    const { EngineClient } = await import('../src/engine-client.js');
    const client = new EngineClient({ base: new URL('../', location.href).href });
    await client.ready;
    const bytes = await (await fetch('../models/fashion_cnn_smelu.safetensors')).arrayBuffer();
    const model = await client.loadModel(bytes);
    const lane = client.lane(() => {});
    // Every reply, the cancelled one too (the lane hands on only the newest).
    const replies = [];
    const both = new Promise((resolve) => {
      client.worker.addEventListener('message', (e) => {
        if (e.data.type !== 'conductance') return;
        replies.push({ id: e.data.id, reply: JSON.parse(e.data.text), at: performance.now() });
        if (replies.length === 2) resolve();
      });
    });
    const input = new Float32Array(784).fill(0.5);
    const t0 = performance.now();
    // Riemann nodes: no time goes into computing the rule before the path.
    const long = lane.request('conductance', { input, request: { layer: 3, steps: 16384, quadrature: 'riemann_middle', baseline: 'black' } });
    await new Promise((r) => setTimeout(r, 300));
    const short = lane.request('conductance', { input, request: { layer: 3, steps: 16, baseline: 'black' } });
    await both;
    client.worker.terminate();
    return {
      model: model.error || null, long, short, ms: performance.now() - t0,
      replies: replies.map((r) => ({
        id: r.id, cancelled: r.reply.cancelled === true, error: r.reply.error || null, gap: r.reply.gap, ms: r.at - t0,
      })),
    };
  });
  const [firstReply, secondReply] = lane.replies;
  check(
    'engine: a newer conductance request stops the one in flight (it answers {"cancelled": true}), and the newer one completes',
    !lane.model && firstReply.id === lane.long && firstReply.cancelled && secondReply.id === lane.short &&
      !secondReply.cancelled && !secondReply.error && Number.isFinite(secondReply.gap),
    JSON.stringify(lane),
  );
}

// ---- the package on another origin (a CDN with CORS) ------------------------

async function fromAnotherOrigin(s) {
  const { browser, dir, docs, errors } = s;
  await s.iso?.close();
  s.iso = null;
  const cdn = await staticServer(dir, { cors: true });
  const course = docs.replace('../src/igscope-explorer.js', `${cdn.url}src/igscope-explorer.js`);
  const hosts = [await staticServer(dir, { extra: { '/course.html': course } }), await staticServer(dir, { isolated: true, extra: { '/course.html': course } })];
  try {
    for (const [k, host] of hosts.entries()) {
      const expect = k === 0 ? 'single' : 'threaded-relaxed';
      const ctx = await browser.newContext();
      try {
        const pg = await ctx.newPage();
        const reqs = [];
        watch(pg, `widget from another origin (${expect})`, errors, reqs);
        await pg.goto(`${host.url}course.html`);
        await allDone(pg);
        const wc = await widgets(pg);
        const allowed = [new URL(host.url).origin, new URL(cdn.url).origin];
        const other = reqs.filter((u) => !allowed.some((o) => u.startsWith(o)) && !u.startsWith('blob:') && !u.startsWith('data:'));
        check(
          `widget: served from another origin (CORS), on a ${k === 0 ? 'plain' : 'cross-origin isolated'} page both widgets run the ${expect} build`,
          wc.length === 2 && wc.every((x) => x.state === 'done' && x.colours > 3 && x.info.build === expect) && other.length === 0,
          wc.map((x) => `${x.id}: ${x.state}${x.error ? ` (${x.error})` : ''}, ${x.status}`).join('; ') + (other.length ? `; other origins: ${other.join(', ')}` : ''),
        );
      } finally {
        await ctx.close();
      }
    }
    check('widget: from another origin the model is fetched once per page', cdn.counts.get('/models/fashion_cnn_smelu.safetensors') === 2, `${cdn.counts.get('/models/fashion_cnn_smelu.safetensors')} for 2 pages`);
  } finally {
    await cdn.close();
    for (const h of hosts) await h.close();
  }
}

const STEPS = [
  types, docsExample, nativeCrossCheck, graphModel, onnxModel, sharedFiles, jsApi, trainingBaselines, controls, hostileCss, stylesStayInside,
  isolatedDocsExample, widgetsCancelOnlyTheirOwn, laneCancelInFlight, fromAnotherOrigin,
];

export async function widgetTests({ browser, root, native, fixture = null, onlyOnnx = false }) {
  const dir = path.join(root, 'build-web/widget');
  if (!fs.existsSync(path.join(dir, DOCS))) {
    check('the widget package is built (build-web/widget)', false, 'run scripts/web build');
    return;
  }
  const docs = fs.readFileSync(path.join(dir, DOCS), 'utf8');
  const hostile = docs.replace('</head>', `<style>${HOSTILE_CSS}</style>\n</head>`);
  const leakHtml = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><div id="host"><canvas></canvas>
<select><option>a</option></select><input type="range"><output>1</output><dl><dt>t</dt><dd>d</dd></dl>
<figure><figcaption>c</figcaption></figure><label>l</label><span>s</span><div>d</div><p class="root">r</p>
<p class="maps">m</p><p class="status">s</p><p hidden>h</p></div>`;
  const s = {
    browser, root, dir, docs, native, fixture, errors: [], requests: [],
    plain: await staticServer(dir, {
      extra: {
        '/examples/hostile.html': hostile,
        '/examples/leak.html': leakHtml,
        '/examples/resnet.html': GRAPH_PAGE,
        ...(fixture ? { '/examples/onnx.html': ONNX_PAGE(fixture) } : {}),
      },
      mounts: {
        [`/models/${GRAPH_MODEL}`]: path.join(root, 'model_weights', GRAPH_MODEL),
        ...(fixture ? { '/models/small_mixed.onnx': fixture.onnx, '/models/lstm_tiny.onnx': fixture.lstm } : {}),
      },
    }),
    isolated: await staticServer(dir, { isolated: true }),
  };
  try {
    await runSteps('widget', onlyOnnx ? STEPS.filter((step) => ['docsExample', 'onnxModel'].includes(step.name)) : STEPS, s);
  } finally {
    for (const context of [s.context, s.iso]) if (context) await context.close();
    await s.plain.close();
    await s.isolated.close();
  }
  check('widget: no console errors', s.errors.length === 0, s.errors.join(' | '));
}
