// Browser tests of the page's three views beyond pixel maps: the
// layer conductance view, the data set view (class-mean maps) and the
// tabular view (the diabetes regressor). Each is opened on the live page and
// its numbers are compared with the native command line tool for the same
// input (`igscope conductance`, `igscope attribute --input diabetes:K`) or
// with the class-map JSON the build wrote, within 1e-4 relative.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const TOLERANCE = 1e-4;
const MODEL = 'fashion_cnn_smelu.safetensors';
const OTHER_MODEL = 'fashion_cnn_v1.safetensors';

// max |a - b| over the largest |b|: the relative difference of two vectors.
function relativeDiff(a, b) {
  const fa = a.flat(Infinity);
  const fb = b.flat(Infinity);
  if (fa.length !== fb.length || !fa.length) return Infinity;
  let diff = 0;
  let largest = 0;
  for (let i = 0; i < fa.length; ++i) {
    diff = Math.max(diff, Math.abs(fa[i] - fb[i]));
    largest = Math.max(largest, Math.abs(fb[i]));
  }
  return diff / Math.max(largest, 1e-30);
}

function close(a, b, scale) {
  return Math.abs(a - b) <= TOLERANCE * Math.max(Math.abs(scale), 1e-30);
}

function runNative(cli, args, out) {
  execFileSync(cli, [...args, '--backend', 'simd', '--threads', '1', '--json', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

async function viewSettled(page, id, timeout = 120000) {
  await page.waitForFunction(
    (id) => {
      const v = document.getElementById(id);
      return v.dataset.requestId && v.dataset.requestId === v.dataset.resultId && v.dataset.state === 'done';
    },
    id,
    { timeout },
  );
}

async function pageSettled(page, timeout = 120000) {
  await page.waitForFunction(
    () => {
      const s = document.getElementById('status');
      return s.dataset.requestId && s.dataset.requestId === s.dataset.resultId && s.dataset.state !== 'computing';
    },
    null,
    { timeout },
  );
}

async function open(page, id) {
  await page.evaluate((id) => {
    document.getElementById(id).open = true;
  }, id);
}

async function select(page, testid, value) {
  await page.selectOption(`[data-testid=${testid}]`, String(value));
}

async function shownValues(page, prefix, names) {
  return page.evaluate(
    ([prefix, names]) => Object.fromEntries(names.map((n) => [n, Number(document.querySelector(`[data-testid=${prefix}-${n}]`).dataset.value)])),
    [prefix, names],
  );
}

// Selects a model and waits for the layer view's result on it.
async function switchModel(page, file) {
  const before = await page.evaluate(() => document.getElementById('layer-view').dataset.requestId);
  await page.selectOption('#model', file);
  await page.waitForFunction(
    ([file, before]) => window.igscope.model() === file && document.getElementById('layer-view').dataset.requestId !== before,
    [file, before],
    { timeout: 60000 },
  );
  await pageSettled(page);
  await viewSettled(page, 'layer-view');
}

async function layerChecks(page, { root, cli, tmp, check }) {
  // A fixed test image and class, black baseline, 32 Gauss-Legendre steps.
  const sample = await page.evaluate(() => {
    const el = document.querySelector('[data-testid=samples] [data-testid^=sample-]');
    return el ? el.dataset.testid : null;
  });
  if (sample) await page.click(`[data-testid=${sample}]`);
  await page.selectOption('#method', 'ig');
  await page.selectOption('#baseline', 'black');
  await page.selectOption('#quadrature', 'gausslegendre');
  await page.selectOption('#output', 'logit');
  const index = Number(await page.evaluate(() => document.getElementById('input-caption').dataset.index));
  await pageSettled(page);
  const target = (await page.evaluate(() => window.igscope.result())).predicted;
  await page.selectOption('#target', String(target));
  await page.evaluate(() => {
    const el = document.getElementById('steps');
    el.value = '32';
    el.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await pageSettled(page);
  await open(page, 'layer-view');
  const layers = await page.evaluate(() => Array.from(document.querySelectorAll('[data-testid=layer-select] option'), (o) => o.value));
  check('layer view lists the model\'s layers', layers.length === 14, `${layers.length} layers`);
  for (const layer of [5, 10]) {
    await select(page, 'layer-select', layer);
    await viewSettled(page, 'layer-view');
    const shown = await page.evaluate(() => ({
      result: window.igscope.conductance(),
      bars: Array.from(document.querySelectorAll('[data-testid=layer-bars] .sbar'), (b) => Number(b.dataset.value)),
    }));
    const numbers = await shownValues(page, 'layer', ['f-input', 'f-baseline', 'sum', 'gap']);
    const native = runNative(
      cli,
      ['conductance', '--model', path.join(root, 'model_weights', MODEL), '--input', `test:${index}`, '--layer', String(layer),
        '--target', String(target), '--baseline', 'black', '--steps', '32', '--quadrature', 'gausslegendre'],
      path.join(tmp, `conductance-${layer}.json`),
    );
    const r = shown.result;
    const span = native.f_input - native.f_baseline;
    const d = relativeDiff(shown.bars, native.channels);
    check(
      `layer view, layer ${layer} (test image ${index}, class ${target}): conductance per channel equals igscope conductance`,
      r.layer === layer && r.target === target && shown.bars.length === native.channels.length && d <= TOLERANCE,
      `${shown.bars.length} bars, relative difference ${d.toExponential(2)}`,
    );
    check(
      `layer view, layer ${layer}: F(x), F(x'), the sum and the gap shown equal the native ones`,
      close(numbers['f-input'], native.f_input, native.f_input) &&
        close(numbers['f-baseline'], native.f_baseline, span) &&
        close(numbers.sum, native.sum, span) &&
        close(numbers.gap, native.gap, span),
      `sum ${numbers.sum.toFixed(5)} vs ${native.sum.toFixed(5)}, gap ${numbers.gap.toExponential(3)} vs ${native.gap.toExponential(3)}`,
    );
    const sum = shown.bars.reduce((a, b) => a + b, 0);
    check(
      `layer view, layer ${layer}: completeness at the layer (the bars sum to F(x) - F(x') within 1%)`,
      Math.abs(sum - span) <= 0.01 * Math.abs(span) && close(sum, numbers.sum, span),
      `Σ ${sum.toFixed(4)}, F(x) - F(x') ${span.toFixed(4)}`,
    );
  }
  // Another model: the layer list and the conductances follow it.
  await switchModel(page, OTHER_MODEL);
  const other = await page.evaluate(() => ({
    result: window.igscope.conductance(),
    layers: Array.from(document.querySelectorAll('[data-testid=layer-select] option'), (o) => o.textContent),
  }));
  const nativeOther = runNative(
    cli,
    ['conductance', '--model', path.join(root, 'model_weights', OTHER_MODEL), '--input', `test:${index}`, '--layer',
      String(other.result.layer), '--target', String(target), '--baseline', 'black', '--steps', '32', '--quadrature', 'gausslegendre'],
    path.join(tmp, 'conductance-other.json'),
  );
  const dOther = relativeDiff(other.result.channels, nativeOther.channels);
  check(
    'layer view follows a model switch (its layers and igscope conductance on that model)',
    other.layers.some((l) => l.includes('relu')) && dOther <= TOLERANCE,
    `layer ${other.result.layer}, relative difference ${dOther.toExponential(2)}`,
  );
  await switchModel(page, MODEL);
  // It follows the page's controls: a new baseline recomputes the view.
  await page.selectOption('#baseline', 'white');
  await viewSettled(page, 'layer-view');
  const white = await page.evaluate(() => window.igscope.conductance());
  check('layer view follows the page\'s baseline', white.baseline === 'white', white.baseline);
  await page.selectOption('#baseline', 'black');
  await pageSettled(page);
}

// The ResNet (a graph model): the page's IG map equals igscope attribute,
// the layer view draws the graph, shows completeness at a cut and says it
// does not apply at a node that paths bypass.
const GRAPH_MODEL = 'fashion_resnet.safetensors';

async function graphChecks(page, { root, cli, tmp, check }) {
  const file = path.join(root, 'model_weights', GRAPH_MODEL);
  const info = JSON.parse(execFileSync(cli, ['info', file, '--json'], { encoding: 'utf8' }));
  await switchModel(page, GRAPH_MODEL);
  await pageSettled(page);
  const index = Number(await page.evaluate(() => document.getElementById('input-caption').dataset.index));
  const result = await page.evaluate(() => window.igscope.result());
  const native = runNative(
    cli,
    ['attribute', '--model', file, '--input', `test:${index}`, '--method', 'ig', '--baseline', 'black', '--steps', '32',
      '--quadrature', 'gausslegendre', '--output', 'logit', '--target', String(result.target)],
    path.join(tmp, 'resnet-attribute.json'),
  );
  const d = relativeDiff(result.attributions.flat(), native.attributions.flat());
  check(
    `${GRAPH_MODEL} computes in the page: its IG map equals igscope attribute (test image ${index})`,
    result.steps === 32 && d <= TOLERANCE && Math.abs(result.gap - native.gap) <= 1e-4 * Math.abs(native.f_input - native.f_baseline),
    `relative difference ${d.toExponential(2)}, gap ${result.gap.toExponential(2)} vs ${native.gap.toExponential(2)}`,
  );
  const drawn = await page.evaluate(() => document.querySelectorAll('[data-testid=layer-graph] [data-testid^=graph-node-]').length);
  check('the layer view draws every node of the graph', drawn === info.layers.length, `${drawn} of ${info.layers.length}`);
  const byId = (id) => info.layers.findIndex((l) => l.id === id);
  for (const [id, cut] of [['layer2.0.relu2', true], ['layer2.0.conv1', false]]) {
    const k = byId(id);
    await page.click(`[data-testid=graph-node-${k}]`);
    await viewSettled(page, 'layer-view');
    const shown = await page.evaluate(() => ({
      result: window.igscope.conductance(),
      cut: document.querySelector('[data-testid=layer-cut]').textContent,
      gap: document.querySelector('[data-testid=layer-gap]').textContent,
      select: document.querySelector('[data-testid=layer-select]').value,
    }));
    const nativeC = runNative(
      cli,
      ['conductance', '--model', file, '--input', `test:${index}`, '--layer', id, '--target', String(result.target),
        '--baseline', 'black', '--steps', '32', '--quadrature', 'gausslegendre'],
      path.join(tmp, `resnet-conductance-${k}.json`),
    );
    const dc = relativeDiff(shown.result.channels, nativeC.channels);
    const span = nativeC.f_input - nativeC.f_baseline;
    if (cut) {
      check(
        `layer view at the cut ${id}: conductance equals igscope conductance, and completeness holds as at the input (its gap is the input IG's: the same path points)`,
        shown.select === String(k) && shown.result.cut && shown.cut === 'yes' && dc <= TOLERANCE &&
          Math.abs(shown.result.gap - native.gap) <= 1e-4 * Math.abs(span),
        `relative difference ${dc.toExponential(2)}, gap ${shown.result.gap.toExponential(3)} vs the input IG's ${native.gap.toExponential(3)} (F(x) - F(x') ${span.toFixed(3)})`,
      );
    } else {
      check(
        `layer view at ${id}, inside a residual block: says completeness does not apply, conductance equals igscope's`,
        !shown.result.cut && nativeC.cut === false && shown.cut.startsWith('no') && /does not apply/.test(shown.gap) && dc <= TOLERANCE,
        `${shown.cut}; ${shown.gap}; relative difference ${dc.toExponential(2)}`,
      );
    }
  }
  await switchModel(page, MODEL);
}

async function datasetChecks(page, { root, check }) {
  const file = path.join(root, 'build-web/public/data/classmaps/classmaps.json');
  const maps = JSON.parse(fs.readFileSync(file, 'utf8'));
  await open(page, 'dataset-view');
  await page.waitForFunction(() => document.getElementById('dataset-view').dataset.state === 'done', null, { timeout: 60000 });
  const shown = await page.evaluate(() => ({
    caption: document.querySelector('[data-testid=classmaps-caption]').textContent,
    images: Number(document.querySelector('[data-testid=classmaps-caption]').dataset.images),
    classes: Array.from(document.querySelectorAll('[data-testid=classmaps] figure'), (f) => ({
      count: Number(f.dataset.count),
      meanSum: Number(f.dataset.meanSum),
      meanAbsSum: Number(f.dataset.meanAbsSum),
      inked: Array.from(f.querySelectorAll('canvas'), (c) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] !== 255 || d[i + 1] !== 255 || d[i + 2] !== 255) n += 1;
        return n;
      }),
    })),
  }));
  check(
    'data set view states how many test images the maps cover',
    shown.images === maps.images && shown.caption.includes(`first ${maps.images} of the 10,000 test images`),
    `${shown.images} images`,
  );
  let ok = shown.classes.length === maps.classes.length;
  let worst = 0;
  for (const [k, c] of maps.classes.entries()) {
    const s = shown.classes[k];
    if (!s) break;
    const signedSum = c.mean_signed.reduce((a, b) => a + b, 0);
    const absSum = c.mean_abs.reduce((a, b) => a + b, 0);
    worst = Math.max(worst, Math.abs(s.meanSum - c.mean_sum) / Math.abs(c.mean_sum), Math.abs(s.meanAbsSum - c.mean_abs_sum) / c.mean_abs_sum);
    ok =
      ok &&
      s.count === c.count &&
      close(s.meanSum, c.mean_sum, c.mean_sum) &&
      close(s.meanAbsSum, c.mean_abs_sum, c.mean_abs_sum) &&
      close(signedSum, c.mean_sum, c.mean_abs_sum) &&
      close(absSum, c.mean_abs_sum, c.mean_abs_sum) &&
      s.inked.every((n) => n > 100);
  }
  const counts = maps.classes.reduce((a, c) => a + c.count, 0);
  check(
    'data set view shows every class\'s mean signed and mean absolute map with the class-map JSON\'s counts and sums',
    ok && counts === maps.images,
    `${shown.classes.length} classes, ${counts} images, largest relative difference ${worst.toExponential(2)}`,
  );
}

async function tabularChecks(page, { root, cli, tmp, check }) {
  await open(page, 'tabular-view');
  await page.waitForFunction(() => document.getElementById('tabular-view').dataset.loaded === 'true', null, { timeout: 60000 });
  await viewSettled(page, 'tabular-view');
  const rows = await page.evaluate(() => Array.from(document.querySelectorAll('[data-testid=tabular-row] option'), (o) => Number(o.value)));
  check('tabular view offers the 88 held-out rows', rows.length === 88, `${rows.length} rows`);
  const model = path.join(root, 'model_weights/diabetes_mlp.safetensors');
  for (const [row, baseline] of [[rows[0], 'mean'], [rows[5], 'median'], [rows[17], 'constant:0']]) {
    await select(page, 'tabular-row', row);
    await select(page, 'tabular-baseline', baseline);
    await viewSettled(page, 'tabular-view');
    const shown = await page.evaluate(() => ({
      result: window.igscope.tabular(),
      bars: Array.from(document.querySelectorAll('[data-testid=tabular-bars] .sbar'), (b) => Number(b.dataset.value)),
      names: Array.from(document.querySelectorAll('[data-testid=tabular-bars] .sbar .name'), (b) => b.textContent),
    }));
    const numbers = await shownValues(page, 'tabular', ['prediction', 'f-baseline', 'sum', 'gap']);
    const native = runNative(
      cli,
      ['attribute', '--model', model, '--input', `diabetes:${row}`, '--method', 'ig', '--baseline', baseline, '--steps', '32',
        '--quadrature', 'gausslegendre'],
      path.join(tmp, `tabular-${row}.json`),
    );
    const d = relativeDiff(shown.bars, native.attributions);
    check(
      `tabular view, row ${row}, baseline ${baseline}: IG per feature equals igscope attribute --input diabetes:${row}`,
      shown.names.join() === native.features.join() && d <= TOLERANCE && relativeDiff(shown.result.raw, native.raw) <= 1e-6,
      `relative difference ${d.toExponential(2)}`,
    );
    const span = native.f_input - native.f_baseline;
    check(
      `tabular view, row ${row}, baseline ${baseline}: prediction, F(x'), sum and gap equal the native ones`,
      close(numbers.prediction, native.f_input, native.f_input) &&
        close(numbers['f-baseline'], native.f_baseline, native.f_input) &&
        close(numbers.sum, native.attribution_sum, span) &&
        close(numbers.gap, native.gap, span),
      `prediction ${numbers.prediction.toFixed(3)} (native ${native.f_input.toFixed(3)}), gap ${numbers.gap.toExponential(2)} (native ${native.gap.toExponential(2)})`,
    );
  }
}

// Without COOP/COEP (the single-threaded build) the views compute too.
async function plainChecks(browser, url, { root, cli, tmp, check, errors }) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`views (not isolated) console: ${msg.text()} (${msg.location().url || ''})`);
  });
  page.on('pageerror', (err) => errors.push(`views (not isolated) pageerror: ${err.message}`));
  await page.goto(url);
  await pageSettled(page);
  await open(page, 'tabular-view');
  await page.waitForFunction(() => document.getElementById('tabular-view').dataset.loaded === 'true', null, { timeout: 60000 });
  await viewSettled(page, 'tabular-view');
  const r = await page.evaluate(() => window.igscope.tabular());
  const row = Number(await page.evaluate(() => document.querySelector('[data-testid=tabular-row]').value));
  const native = runNative(
    cli,
    ['attribute', '--model', path.join(root, 'model_weights/diabetes_mlp.safetensors'), '--input', `diabetes:${row}`, '--method', 'ig',
      '--baseline', 'mean', '--steps', '32', '--quadrature', 'gausslegendre'],
    path.join(tmp, 'tabular-plain.json'),
  );
  const d = relativeDiff(r.attributions, native.attributions);
  check('without COOP/COEP the tabular view computes and agrees with the native tool', d <= TOLERANCE, `relative difference ${d.toExponential(2)}`);
  await open(page, 'layer-view');
  await viewSettled(page, 'layer-view');
  const c = await page.evaluate(() => window.igscope.conductance());
  check('without COOP/COEP the layer view computes', c.channels.every(Number.isFinite) && c.channels.length > 0, `layer ${c.layer}`);
  await context.close();
}

export async function viewsTests({ browser, url, plainUrl, root, cli, tmp, check, errors }) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`views console: ${msg.text()} (${msg.location().url || ''})`);
  });
  page.on('pageerror', (err) => errors.push(`views pageerror: ${err.message}`));
  await page.goto(url);
  await pageSettled(page);
  const env = { root, cli, tmp, check };
  await layerChecks(page, env);
  await graphChecks(page, env);
  await datasetChecks(page, env);
  await tabularChecks(page, env);
  check('the views show no error message', await page.locator('[role=alert]').isHidden());
  await context.close();
  if (plainUrl) await plainChecks(browser, plainUrl, { ...env, errors });
}
