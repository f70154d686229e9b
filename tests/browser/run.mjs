// Browser tests of the live page, of the embeddable widget
// (tests/browser/widget.mjs) and of the page's conductance, data set and
// tabular views (tests/browser/views.mjs). Serves build-web/dist twice with
// `vite preview` (with and without the COOP/COEP headers), drives headless
// Chromium with playwright-core and cross-checks the page's attributions
// against the native command line tool. Prints one line per check, then
// `N passed, N failed`, and exits non-zero when any fails. Run by
// `scripts/web test` after the build.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { preview } from 'vite';
import { igscopeConfig } from '../../web/vite.config.js';
import { allPassed, check, runSteps, summary } from './checks.mjs';
import { buildOnnxFixture, onnxTests } from './onnx.mjs';
import { viewsTests } from './views.mjs';
import { widgetTests } from './widget.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'build/igscope');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'igscope-browser-'));
const TOLERANCE = 1e-4;
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function serve(isolated) {
  const port = await freePort();
  const config = igscopeConfig({ isolated });
  config.preview = { ...config.preview, port, strictPort: true };
  const server = await preview({ configFile: false, ...config });
  return { server, url: `http://127.0.0.1:${port}/` };
}

// model: a file in model_weights/, or a path.
function nativeAttributions(model, index, target, baseline) {
  const out = path.join(tmp, `native-${index}-${target}-${baseline.replace(/[^a-z0-9.]/gi, '_')}.json`);
  execFileSync(cli, [
    'attribute', '--model', path.resolve(root, 'model_weights', model), '--input', `test:${index}`,
    '--target', String(target), '--method', 'ig', '--baseline', baseline, '--steps', '32',
    '--quadrature', 'gausslegendre', '--backend', 'simd', '--threads', '1', '--json', out,
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

function maxAbsDiff(a, b) {
  const fa = a.flat(Infinity);
  const fb = b.flat(Infinity);
  if (fa.length !== fb.length) return Infinity;
  let m = 0;
  for (let i = 0; i < fa.length; ++i) m = Math.max(m, Math.abs(fa[i] - fb[i]));
  return m;
}

// Waits until the result drawn is the one for the newest request.
async function settled(page, timeout = 60000) {
  await page.waitForFunction(
    () => {
      const s = document.getElementById('status');
      return s.dataset.requestId && s.dataset.requestId === s.dataset.resultId && s.dataset.state !== 'computing';
    },
    null,
    { timeout },
  );
}

async function setControl(page, id, value) {
  await page.evaluate(
    ([id, value]) => {
      const el = document.getElementById(id);
      el.value = String(value);
      el.dispatchEvent(new Event('input', { bubbles: true }));
    },
    [id, value],
  );
}

async function heatmapPixels(page) {
  return page.evaluate(() => {
    const c = document.getElementById('heatmap');
    return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
  });
}

// Median milliseconds of the module's IG (32 Gauss-Legendre steps, black
// baseline) over a few runs of the current input, for the log only.
async function medianMilliseconds(page, runs = 5) {
  const ms = [];
  for (let k = 0; k < runs; ++k) {
    await setControl(page, 'steps', 31);
    await settled(page);
    await setControl(page, 'steps', 32);
    await settled(page);
    ms.push((await page.evaluate(() => window.igscope.result())).milliseconds);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}

async function downloadJson(page) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download-json]')]);
  const file = path.join(tmp, download.suggestedFilename());
  await download.saveAs(file);
  return { name: download.suggestedFilename(), json: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

// The default model is tried first; until it is shipped, the page falls back
// to the next one, and the browser logs that fetch's 404 as a console error.
const MISSING_DEFAULT_MODEL = fs.existsSync(path.join(root, 'build-web/public/models/fashion_cnn_smelu.safetensors'))
  ? null
  : '/models/fashion_cnn_smelu.safetensors';

function watchConsole(page, errors, label) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const where = msg.location().url || '';
    if (MISSING_DEFAULT_MODEL && where.endsWith(MISSING_DEFAULT_MODEL) && /404/.test(msg.text())) return;
    errors.push(`${label} console: ${msg.text()} (${where})`);
  });
  page.on('pageerror', (err) => errors.push(`${label} pageerror: ${err.message}`));
}

// ---- the page, cross-origin isolated (the threaded build) -----------------
// Named steps, run in order on one page; `s` carries the page and what a
// step found for the steps after it (the test image, the model, the result).

async function buildInUse(s) {
  const env = await s.page.evaluate(() => ({
    isolated: self.crossOriginIsolated,
    cores: navigator.hardwareConcurrency,
    info: window.igscope.info(),
    shown: { ...document.getElementById('build-info').dataset },
    shownText: document.getElementById('build-info').textContent,
  }));
  check('page is cross-origin isolated', env.isolated === true);
  // Chromium has had relaxed SIMD on by default since 114.
  check(
    'threaded build with relaxed SIMD runs',
    env.info.threaded === true && env.info.build === 'threaded-relaxed' && /relaxed SIMD/.test(env.info.isa) &&
      /fused multiply-add/.test(env.shownText),
    JSON.stringify(env.info),
  );
  const expectThreads = Math.min(env.cores, 4);
  check(
    `threads = hardwareConcurrency clamped to 4 (${expectThreads}), at least 2`,
    env.info.threads === expectThreads && env.info.threads >= 2 && env.shown.threads === String(env.info.threads),
    `threads ${env.info.threads}, cores ${env.cores}`,
  );
  check('SIMD build', env.info.simd === true && env.shown.simd === 'true');
}

async function sampleGridFilters({ page }) {
  const tiles = await page.locator('#samples .sample').count();
  check('grid shows the 200 test images', tiles === 200, `${tiles}`);
  await setControl(page, 'filter', 'wrong');
  const wrong = await page.locator('#samples .sample:not([hidden])').count();
  const wrongMarked = await page.locator('#samples .sample.wrong:not([hidden])').count();
  check('filter "misclassified" shows only misclassified images', wrong > 0 && wrong < 200 && wrong === wrongMarked, `${wrong}`);
  await setControl(page, 'filter', 'all');
  await setControl(page, 'filter-class', '3');
  const dresses = await page.locator('#samples .sample:not([hidden])').count();
  check('filter by class shows its 20 images', dresses === 20, `${dresses}`);
  await setControl(page, 'filter-class', '-1');
}

// A fixed test image, an explicit target, baseline black, 32 GL steps.
async function nativeCrossCheck(s) {
  const { page } = s;
  s.model = await page.evaluate(() => window.igscope.model());
  s.pick = await page.evaluate(() => document.querySelectorAll('#samples .sample')[7].getAttribute('data-testid'));
  s.index = Number(s.pick.replace('sample-', ''));
  s.target = 2;
  await page.click(`[data-testid=${s.pick}]`);
  await page.selectOption('#target', String(s.target));
  await page.selectOption('#baseline', 'black');
  await setControl(page, 'steps', 32);
  await settled(page);
  const { name, json } = await downloadJson(page);
  s.pageResult = json;
  check('attributions JSON downloads', name.endsWith('.json') && Array.isArray(json.attributions), name);
  const native = nativeAttributions(s.model, s.index, s.target, 'black');
  const diff = maxAbsDiff(json.attributions, native.attributions);
  check(
    `page attributions = native igscope (test:${s.index}, class ${s.target}, black, 32 GL, ${s.model}) within ${TOLERANCE}`,
    diff <= TOLERANCE && json.target === s.target && json.steps === 32 && json.quadrature === 'gausslegendre',
    `max |diff| ${diff.toExponential(2)}`,
  );
}

async function completenessShown({ page, pageResult }) {
  const shown = await page.evaluate(() => {
    const get = (id) => {
      const el = document.getElementById(id);
      return { text: el.textContent, value: Number(el.dataset.value), visible: el.offsetParent !== null };
    };
    return { gap: get('gap'), percent: get('gap-percent'), fx: get('f-input'), fb: get('f-baseline'), sum: get('attr-sum') };
  });
  const expectPercent = (100 * Math.abs(pageResult.gap)) / Math.abs(pageResult.f_input - pageResult.f_baseline);
  check(
    'completeness gap displayed and consistent with the result',
    shown.gap.visible &&
      shown.gap.text.trim().length > 0 &&
      Math.abs(shown.gap.value - pageResult.gap) <= 1e-9 &&
      Math.abs(shown.sum.value - shown.gap.value - (shown.fx.value - shown.fb.value)) <= 1e-4 * Math.max(1, Math.abs(shown.fx.value)) &&
      Math.abs(shown.percent.value - expectPercent) <= 1e-6 * Math.max(1, expectPercent),
    `gap "${shown.gap.text}", ${shown.percent.text} of |F(x) - F(x')|`,
  );
}

async function timingAndPathPlot({ page }) {
  console.log(`INFO  threaded build with relaxed SIMD: IG with 32 Gauss-Legendre steps in ${(await medianMilliseconds(page)).toFixed(1)} ms (median of 5)`);
  const plotted = await page.locator('#path-plot .uplot').count();
  check('path plot of F along alpha is drawn', plotted === 1);
}

// Dragging a baseline slider: the map follows and ends at the final value.
async function blurSlider({ page, model, index, target }) {
  await page.selectOption('#baseline', 'blur');
  await settled(page);
  const before = await heatmapPixels(page);
  const values = [1, 2, 4, 6, 8, 10.5];
  for (const v of values) {
    await setControl(page, 'b-blur', v);
    await page.waitForTimeout(15);
  }
  await settled(page);
  const after = await heatmapPixels(page);
  const final = await page.evaluate(() => window.igscope.result());
  const finalSpec = `blur:${values[values.length - 1]}`;
  check('dragging the blur slider changes the heatmap', before.some((v, i) => v !== after[i]));
  check('the map drawn is for the final slider value', final.baseline === finalSpec, `drawn ${final.baseline}`);
  const nativeBlur = nativeAttributions(model, index, target, finalSpec);
  const blurDiff = maxAbsDiff(final.attributions, nativeBlur.attributions);
  check(`final map = native igscope with ${finalSpec} within ${TOLERANCE}`, blurDiff <= TOLERANCE, `max |diff| ${blurDiff.toExponential(2)}`);
}

// Live noise slider: several gaussian sigmas, the last one wins.
async function noiseSlider({ page }) {
  await page.selectOption('#baseline', 'gaussian');
  for (const v of [0.1, 0.25, 0.5, 0.75]) {
    await setControl(page, 'b-sigma', v);
    await page.waitForTimeout(10);
  }
  await settled(page);
  const gauss = await page.evaluate(() => window.igscope.result());
  check('gaussian sigma slider: the map is for the final value', gauss.baseline === 'gaussian:0.75@0', gauss.baseline);
}

// A real mouse drag across the noise slider; the final map must equal the
// page's own computation at the final value, computed again from scratch.
async function noiseSliderMouseDrag({ page }) {
  const box = await page.locator('#b-sigma').boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + 4, y);
  await page.mouse.down();
  for (let k = 1; k <= 8; ++k) {
    await page.mouse.move(box.x + 4 + ((box.width - 8) * k) / 9, y, { steps: 2 });
    await page.waitForTimeout(10);
  }
  await page.mouse.up();
  await settled(page);
  const dragged = await page.evaluate(() => ({ result: window.igscope.result(), sigma: document.getElementById('b-sigma').value }));
  await setControl(page, 'b-seed', 1);
  await settled(page);
  await setControl(page, 'b-seed', 0);
  await settled(page);
  const again = await page.evaluate(() => window.igscope.result());
  const dragDiff = maxAbsDiff(dragged.result.attributions, again.attributions);
  check(
    'mouse drag of the noise slider: the map drawn is the one for the final position',
    dragged.result.baseline === `gaussian:${dragged.sigma}@0` && again.baseline === dragged.result.baseline && dragDiff <= 1e-6,
    `final sigma ${dragged.sigma}, drawn ${dragged.result.baseline}`,
  );
}

// A long computation is cancelled in flight when the controls change.
async function cancelInFlight({ page }) {
  await page.selectOption('#baseline', 'black');
  await settled(page);
  const statsBefore = await page.evaluate(() => window.igscope.stats());
  await setControl(page, 'steps', 256);
  await setControl(page, 'steps', 16384);
  const longId = await page.evaluate(() => document.getElementById('status').dataset.requestId);
  await page.waitForFunction((id) => document.getElementById('status').dataset.startedId === id, longId);
  const t0 = Date.now();
  await setControl(page, 'steps', 32);
  await settled(page);
  const waited = Date.now() - t0;
  const statsAfter = await page.evaluate(() => window.igscope.stats());
  const stepsNow = (await page.evaluate(() => window.igscope.result())).steps;
  check(
    'a computation in flight is cancelled by a newer request (shared generation counter)',
    statsAfter.cancelled > statsBefore.cancelled && stepsNow === 32,
    `cancelled ${statsAfter.cancelled - statsBefore.cancelled}, newest result after ${waited} ms`,
  );
}

async function everyMethod({ page }) {
  for (const method of ['gradient', 'gradxinput', 'smoothgrad', 'smoothgrad_ig', 'blurig', 'guidedig', 'ig']) {
    await page.selectOption('#method', method);
    await settled(page);
    const r = await page.evaluate(() => window.igscope.result());
    const errorShown = await page.locator('[role=alert]').isVisible();
    check(`method ${method} computes`, r.method === method && !errorShown && r.attributions.length === 28);
  }
}

// Every baseline kind (the custom one is a test image).
async function everyBaseline({ page }) {
  const kinds = await page.evaluate(() => Array.from(document.querySelectorAll('#baseline option'), (o) => o.value));
  for (const kind of kinds) {
    await page.selectOption('#baseline', kind);
    if (kind === 'image') await setControl(page, 'b-image', 3);
    await settled(page);
    const r = await page.evaluate(() => ({ result: window.igscope.result(), spec: document.getElementById('baseline-spec').textContent }));
    const errorShown = await page.locator('[role=alert]').isVisible();
    check(
      `baseline ${r.spec} computes`,
      !errorShown && r.result.baseline === r.spec && r.result.baseline_image.length === 28 && r.result.gap !== null,
      `gap ${(100 * Math.abs(r.result.relative_gap)).toFixed(2)}%`,
    );
  }
  await page.selectOption('#baseline', 'black');
  await settled(page);
}

// Switching the model recomputes with the other model.
async function modelSwitch({ page, model, pageResult }) {
  const offered = await page.evaluate(async () => {
    const files = Array.from(document.querySelectorAll('#model option'), (o) => o.value);
    const present = [];
    for (const f of files) if ((await fetch(`models/${f}`, { method: 'HEAD' })).ok) present.push(f);
    return present;
  });
  if (offered.length < 2) {
    console.log(`SKIP  switching the model: only ${offered.join(', ')} is on the server`);
    return;
  }
  const other = offered.find((f) => f !== model);
  // A model change recomputes once the model and the grid's predictions
  // are in: wait for that new request, then for its result.
  const switchTo = async (file) => {
    const id = await page.evaluate(() => document.getElementById('status').dataset.requestId);
    await page.selectOption('#model', file);
    await page.waitForFunction((r) => document.getElementById('status').dataset.requestId !== r, id);
    await settled(page);
  };
  await switchTo(other);
  const switched = await page.evaluate(() => window.igscope.result());
  await switchTo(model);
  const back = await page.evaluate(() => window.igscope.result());
  check(
    `switching the model (${model} -> ${other} -> back) recomputes`,
    maxAbsDiff(switched.attributions, back.attributions) > 0 && maxAbsDiff(back.attributions, pageResult.attributions) <= 1e-6,
  );
}

// Bad uploads: a clear message and the state kept.
async function badUploads({ page }) {
  const keep = await page.evaluate(() => ({
    caption: document.getElementById('input-caption').textContent,
    result: document.getElementById('status').dataset.resultId,
    model: window.igscope.model(),
  }));
  const keepPixels = await heatmapPixels(page);
  await page.setInputFiles('#upload', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image\n') });
  await page.locator('[role=alert]').waitFor({ state: 'visible' });
  const alertText = await page.locator('[role=alert]').innerText();
  const still = await page.evaluate(() => ({
    caption: document.getElementById('input-caption').textContent,
    result: document.getElementById('status').dataset.resultId,
  }));
  check(
    'a text file as image upload shows a clear error',
    /not an image/i.test(alertText) && alertText.includes('notes.txt'),
    alertText.replace(/\s+/g, ' ').replace('×', '').trim(),
  );
  check(
    'the previous input and map are kept',
    still.caption === keep.caption && still.result === keep.result && (await heatmapPixels(page)).every((v, i) => v === keepPixels[i]),
  );
  await page.click('#error-close');
  const corrupt = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64, 7)]);
  await page.setInputFiles('#upload', { name: 'broken.png', mimeType: 'image/png', buffer: corrupt });
  await page.locator('[role=alert]').waitFor({ state: 'visible' });
  check('a corrupt PNG shows a clear error', /broken\.png/.test(await page.locator('[role=alert]').innerText()));
  await page.click('#error-close');
  await page.setInputFiles('#model-upload', { name: 'bad.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('garbage') });
  await page.locator('[role=alert]').waitFor({ state: 'visible' });
  const modelAlert = await page.locator('[role=alert]').innerText();
  await setControl(page, 'steps', 33);
  await settled(page);
  const afterBadModel = await page.evaluate(() => ({ model: window.igscope.model(), result: window.igscope.result() }));
  check(
    'a bad model file shows a clear error and the previous model keeps working',
    /bad\.safetensors/.test(modelAlert) && afterBadModel.model === keep.model && afterBadModel.result.steps === 33,
    modelAlert.replace(/\s+/g, ' ').replace('×', '').trim(),
  );
  await page.click('#error-close');
  await setControl(page, 'steps', 32);
  await settled(page);
}

// A real picture: a light shirt-like shape on white, drawn by the browser.
async function pictureUpload({ page }) {
  const png = await page.evaluate(async () => {
    const c = new OffscreenCanvas(120, 90);
    const ctx = c.getContext('2d');
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, 120, 90);
    ctx.fillStyle = '#222';
    ctx.fillRect(35, 10, 50, 75);
    ctx.fillRect(15, 10, 90, 20);
    const blob = await c.convertToBlob({ type: 'image/png' });
    return Array.from(new Uint8Array(await blob.arrayBuffer()));
  });
  await page.setInputFiles('#upload', { name: 'shirt.png', mimeType: 'image/png', buffer: Buffer.from(png) });
  await page.waitForFunction(() => document.getElementById('input-caption').textContent.includes('shirt.png'));
  await settled(page);
  const uploaded = await page.evaluate(() => ({
    invert: document.getElementById('invert').checked,
    preview: !document.getElementById('upload-preview-box').hidden,
    result: window.igscope.result(),
  }));
  check('an image upload is converted (preview shown, inverted) and explained', uploaded.invert && uploaded.preview && uploaded.result.attributions.length === 28);
  await setControl(page, 'rotate', 90);
  await settled(page);
  check('transforms recompute', (await page.evaluate(() => window.igscope.result())).attributions.length === 28);
}

// The screenshot after a full render: a test image, the gallery filled.
async function galleryAndDownloads({ page, pick }) {
  await setControl(page, 'rotate', 0);
  await page.click(`[data-testid=${pick}]`);
  await page.selectOption('#target', '-1');
  await page.selectOption('#render-mode', 'signed');
  await settled(page);
  await page.waitForFunction(() => document.querySelectorAll('#baseline-gallery .tile.pending').length === 0, null, { timeout: 120000 });
  const galleryErrors = await page.evaluate(() =>
    Array.from(document.querySelectorAll('#baseline-gallery .gap')).filter((g) => !g.textContent.startsWith('F(')).length,
  );
  check('the baseline gallery shows IG under all 9 baselines', galleryErrors === 0);
  const [png] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download-png]')]);
  const pngFile = path.join(tmp, png.suggestedFilename());
  await png.saveAs(pngFile);
  const header = fs.readFileSync(pngFile).subarray(0, 8);
  check('heatmap PNG downloads', header.equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), png.suggestedFilename());
  // Saved in the build tree (the committed web/screenshot.png is a copy of one).
  const shot = path.join(root, 'build-web/screenshot.png');
  await page.screenshot({ path: shot, fullPage: true });
  check('screenshot saved to build-web/screenshot.png', fs.statSync(shot).size > 10000);
}

const ISOLATED_STEPS = [
  buildInUse, sampleGridFilters, nativeCrossCheck, completenessShown, timingAndPathPlot, blurSlider, noiseSlider,
  noiseSliderMouseDrag, cancelInFlight, everyMethod, everyBaseline, modelSwitch, badUploads, pictureUpload, galleryAndDownloads,
];

async function isolatedSession(browser, url, errors) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1440, height: 1100 } });
  try {
    const page = await context.newPage();
    watchConsole(page, errors, 'isolated');
    await page.goto(url);
    await settled(page, 120000);
    await runSteps('isolated page', ISOLATED_STEPS, { page });
  } finally {
    await context.close();
  }
}

// ---- the plain threaded build, where the relaxed one cannot load ---------
// The same page twice on one request (the defaults after load): with the
// relaxed-SIMD module, then with its folder answering 404, so the worker
// falls back to the plain threaded build. The two round differently (fused
// against separate multiply and add), so they are compared to 1e-5 of the
// largest attribution (the relaxed one is checked against native igscope in
// the isolated session).
async function defaultResult(context, url, errors, label) {
  const page = await context.newPage();
  watchConsole(page, errors, label);
  await page.goto(url);
  await settled(page, 120000);
  const r = await page.evaluate(() => ({
    info: window.igscope.info(),
    result: window.igscope.result(),
    shown: document.getElementById('build-info').textContent,
  }));
  await page.close();
  return r;
}

async function fallbackSession(browser, url, errors) {
  const context = await browser.newContext();
  try {
    const relaxed = await defaultResult(context, url, errors, 'relaxed');
    let refused = 0;
    await context.route('**/wasm/threaded-relaxed/**', (route) => {
      refused += 1;
      return route.fulfill({ status: 404, body: 'not here' });
    });
    const plain = await defaultResult(context, url, errors, 'fallback');
    check('the relaxed build runs by default', relaxed.info.build === 'threaded-relaxed', relaxed.shown);
    check(
      'without the relaxed build the plain threaded build runs and says why',
      refused > 0 && plain.info.build === 'threaded' && plain.info.threads >= 2 && /simd128$/.test(plain.info.isa) &&
        /relaxed/.test(plain.info.fallback ?? '') && !/fused/.test(plain.shown),
      `${plain.shown}; ${plain.info.fallback}`,
    );
    const a = relaxed.result, b = plain.result;
    const same = a.method === b.method && a.steps === b.steps && a.target === b.target && a.baseline === b.baseline;
    const scale = Math.max(...a.attributions.flat(Infinity).map(Math.abs));
    const d = maxAbsDiff(a.attributions, b.attributions);
    check(
      'relaxed and plain threaded builds give the same map within 1e-5 of its largest value',
      same && scale > 0 && d <= 1e-5 * scale,
      `max |diff| ${d.toExponential(2)} of ${scale.toExponential(2)} (${a.method}, ${a.steps} steps, target ${a.target}, ${a.baseline})`,
    );
    // On a CPU with FMA the engine fuses, so the maps differ in the last bits;
    // without one relaxed_madd may round as the plain build does.
    console.log(`INFO  relaxed against plain threaded build: max |diff| ${d.toExponential(2)} (${d > 0 ? 'they differ: fused' : 'identical'})`);
  } finally {
    await context.close();
  }
}

// ---- the page without COOP/COEP (the single-threaded build) ---------------

async function plainBuild({ page }) {
  const r = await page.evaluate(() => ({
    isolated: self.crossOriginIsolated,
    info: window.igscope.info(),
    result: window.igscope.result(),
    shown: document.getElementById('build-info').textContent,
  }));
  check('without COOP/COEP the page is not cross-origin isolated', r.isolated === false);
  check('without COOP/COEP the single-threaded build runs', r.info.build === 'single' && r.info.threaded === false && r.info.threads === 1, r.shown);
  const finite = r.result.attributions.flat().every(Number.isFinite);
  check('without COOP/COEP an attribution is computed', finite && r.result.method === 'ig', `${r.result.milliseconds.toFixed(1)} ms`);
  console.log(`INFO  single-threaded build: IG with 32 Gauss-Legendre steps in ${(await medianMilliseconds(page)).toFixed(1)} ms (median of 5)`);
}

// No shared memory, so nothing can stop the computation in flight: the
// requests that arrive meanwhile collapse into the newest one.
async function plainQueuedCollapse({ page }) {
  const before = await page.evaluate(() => window.igscope.stats());
  await setControl(page, 'steps', 2048);
  const longId = await page.evaluate(() => document.getElementById('status').dataset.requestId);
  await page.waitForFunction((id) => document.getElementById('status').dataset.startedId === id, longId);
  for (const v of [2, 5, 9]) {
    await setControl(page, 'steps', v);
    await page.waitForTimeout(5);
  }
  await settled(page);
  const last = await page.evaluate(() => ({ result: window.igscope.result(), stats: window.igscope.stats() }));
  check(
    'without COOP/COEP the newest request wins and the ones queued behind a computation are skipped',
    last.result.steps === 9 && last.stats.skipped - before.skipped >= 2,
    `steps ${last.result.steps}, skipped ${last.stats.skipped - before.skipped}`,
  );
}

async function plainSession(browser, url, errors) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    watchConsole(page, errors, 'not isolated');
    await page.goto(url);
    await settled(page, 120000);
    await runSteps('page without COOP/COEP', [plainBuild, plainQueuedCollapse], { page });
  } finally {
    await context.close();
  }
}

async function main() {
  if (!fs.existsSync(path.join(root, 'build-web/dist/index.html'))) throw new Error('build-web/dist is missing: run scripts/web build');
  if (!fs.existsSync(cli)) throw new Error('build/igscope is missing: run scripts/web build');
  const isolated = await serve(true);
  const plain = await serve(false);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const errors = [];
  const started = Date.now();
  // `node tests/browser/run.mjs widget` runs the widget's tests only,
  // `... views` the views' tests only, `... onnx` ONNX import's (page and widget).
  const only = process.argv[2];
  const fixture = buildOnnxFixture({ root, cli, tmp });
  if (!only) {
    for (const [session, url] of [[isolatedSession, isolated.url], [fallbackSession, isolated.url], [plainSession, plain.url]]) {
      try {
        await session(browser, url, errors);
      } catch (e) {
        check(`${session.name} ran to the end`, false, e.stack || e.message);
      }
    }
  }
  try {
    if (!only || only === 'onnx')
      await onnxTests({ browser, url: isolated.url, fixture, native: nativeAttributions, check, errors, settled, setControl, maxAbsDiff, watchConsole });
  } catch (e) {
    check('onnx session ran to the end', false, e.stack || e.message);
  }
  try {
    if (!only || only === 'views') await viewsTests({ browser, url: isolated.url, plainUrl: plain.url, root, cli, tmp, check, errors });
  } catch (e) {
    check('views session ran to the end', false, e.stack || e.message);
  }
  try {
    if (!only || only === 'widget' || only === 'onnx')
      await widgetTests({ browser, root, native: nativeAttributions, fixture, onlyOnnx: only === 'onnx' });
  } catch (e) {
    check('widget session ran to the end', false, e.stack || e.message);
  } finally {
    await browser.close();
    await new Promise((r) => isolated.server.httpServer.close(r));
    await new Promise((r) => plain.server.httpServer.close(r));
  }
  check('no console errors in the whole session', errors.length === 0, errors.join(' | '));
  console.log(`${summary()} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(allPassed() ? 0 : 1);
}

main().catch((e) => {
  console.error(`FAIL  ${e.stack || e.message}`);
  process.exit(1);
});
