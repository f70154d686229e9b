// Runs the browser benchmark: serves bench/browser with Vite (COOP/COEP
// headers), opens it in headless Chromium through playwright-core, waits
// for the page's results, prints a table and writes them as JSON.
//
//   node bench/browser/run.mjs [--out build-web/bench.json] [--rounds 3]
//       [--runs 5] [--min-ms 1000] [--warmup 3] [--image 0] [--steps 32] [--model FILE]
//       [--backends wasm,wasm+firstmax,webgl,cpu] [--engines threaded-relaxed,threaded,single] [--tfjs-threads N]
//       [--chromium-arg ARG]... [--timeout-s 900]
//
// Needs build-web/public from `scripts/web build`. Exits non-zero when the
// page fails, throws an uncaught error, or an igscope build cannot run (a
// TF.js backend that cannot start or compute is reported in the table).
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');

function parseArgs(argv) {
  const o = {
    out: resolve(root, 'build-web/bench.json'),
    page: {},
    chromiumArgs: [],
    timeoutS: 900,
    chromium: '/usr/bin/chromium',
  };
  const pageKeys = { '--rounds': 'rounds', '--runs': 'runs', '--min-ms': 'minMs', '--warmup': 'warmup',
    '--image': 'image', '--steps': 'steps', '--backends': 'backends', '--engines': 'engines',
    '--tfjs-threads': 'tfjsThreads', '--model': 'model' };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--out') o.out = resolve(next());
    else if (a === '--timeout-s') o.timeoutS = Number(next());
    else if (a === '--chromium') o.chromium = next();
    else if (a === '--chromium-arg') o.chromiumArgs.push(next());
    else if (pageKeys[a]) o.page[pageKeys[a]] = next();
    else if (a === '-h' || a === '--help') {
      console.log('usage: node bench/browser/run.mjs [--out FILE] [--rounds N] [--runs N] [--min-ms MS] [--warmup N]\n' +
        '  [--image I] [--steps N] [--model fashion_resnet.safetensors] [--backends wasm,wasm+firstmax,webgl,cpu] [--engines threaded-relaxed,threaded,single] [--tfjs-threads N]\n' +
        '  [--chromium PATH] [--chromium-arg ARG]... [--timeout-s S]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

function pad(s, n, left = false) {
  s = String(s);
  return left ? s.padEnd(n) : s.padStart(n);
}

function printTable(result) {
  const head = ['engine', 'threads', 'ms median', 'ms min', 'vs threaded', 'max diff', 'runs'];
  const rows = result.engines.map((e) =>
    e.error
      ? [e.name, e.threads ?? '', 'error', '', '', '', '']
      : [e.name, e.threads ?? 'gpu', e.msMedian.toFixed(2), e.msMin.toFixed(2), `${e.speedupOfThreaded.toFixed(2)}x`,
         e.maxRelDiff.toExponential(1), e.runs]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => pad(c, widths[i], i === 0)).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  for (const e of result.engines) if (e.error) console.log(`${e.name}: ${e.error}`);
  const timed = result.engines.filter((e) => !e.error);
  for (let r = 0; r < result.config.rounds; ++r) {
    console.log(`round ${r + 1} medians: ` + timed.map((e) => `${e.name} ${e.roundMedians[r].toFixed(2)}`).join(', '));
  }
  // The build the page runs: threaded with relaxed SIMD where it started.
  const plainThreaded = result.engines.find((e) => e.build === 'threaded' && !e.error);
  const t = result.engines.find((e) => e.build === 'threaded-relaxed' && !e.error) ?? plainThreaded;
  if (t && plainThreaded && t !== plainThreaded) {
    console.log(`igscope threaded-relaxed / threaded: ${(t.msMedian / plainThreaded.msMedian).toFixed(2)}x the time ` +
      `(${t.msMedian.toFixed(2)} / ${plainThreaded.msMedian.toFixed(2)} ms; maps differ by ${t.maxRelDiffTo[plainThreaded.name].toExponential(1)} of the largest)`);
  }
  const tf = result.engines.filter((e) => e.kind === 'tfjs' && !e.error);
  for (const e of tf) {
    if (!e.agrees) {
      console.log(`${e.name}: attributions differ from ${result.reference}'s by ${e.maxRelDiff.toExponential(1)} ` +
        'of the largest (> 1e-3)');
    }
  }
  if (t) {
    // Per path point a forward pass and an input gradient (as many
    // multiply-adds as the forward pass; no weight gradients), plus the
    // forward passes of the input and the baseline: 2 x MACs x (2 n + 2).
    const gflop = (2 * result.macsPerForward * (2 * result.config.steps + 2)) / 1e9;
    console.log(`igscope ${t.build}: ${t.msMedian.toFixed(2)} ms per IG, ` +
      `${(gflop / (t.msMedian / 1000)).toFixed(1)} effective GFLOP/s (${gflop.toFixed(2)} GFLOP per IG counted as direct convolutions)`);
    const fastest = (list) => list.reduce((a, b) => (a.msMedian < b.msMedian ? a : b));
    if (tf.length) {
      const best = fastest(tf);
      console.log(`fastest TF.js: ${best.build}, ${best.msMedian.toFixed(2)} ms: igscope ${t.build} is ` +
        `${(best.msMedian / t.msMedian).toFixed(1)}x faster`);
    }
    const agreeing = tf.filter((e) => e.agrees);
    if (agreeing.length) {
      const best = fastest(agreeing);
      console.log(`fastest TF.js that agrees within 1e-3: ${best.build}, ${best.msMedian.toFixed(2)} ms: igscope ${t.build} is ` +
        `${(best.msMedian / t.msMedian).toFixed(1)}x faster`);
    }
  }
  console.log(`free cores for the page (a loop in 2 workers / in 1) before/after: ${result.freeCoresBefore.toFixed(2)} / ` +
    `${result.freeCoresAfter.toFixed(2)}`);
  console.log(`load average before/after: ${result.loadBefore.map((v) => v.toFixed(2)).join(' ')} / ` +
    `${result.loadAfter.map((v) => v.toFixed(2)).join(' ')}`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const server = await createServer({ configFile: resolve(here, 'vite.config.js') });
  await server.listen();
  const { port } = server.httpServer.address();
  const query = new URLSearchParams(o.page).toString();
  const url = `http://127.0.0.1:${port}/index.html${query ? `?${query}` : ''}`;

  const browser = await chromium.launch({
    executablePath: o.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', ...o.chromiumArgs],
  });
  let failed = false;
  try {
    const page = await browser.newPage();
    page.on('console', (m) => console.error(`[page ${m.type()}] ${m.text()}`));
    page.on('response', (r) => {
      if (r.status() >= 400) console.error(`[page] ${r.status()} ${r.url()}`);
    });
    const pageErrors = [];
    page.on('pageerror', (e) => {
      pageErrors.push(e.message);
      console.error(`[page error] ${e.message}`);
    });
    const loadBefore = loadavg();
    const started = new Date().toISOString();
    await page.goto(url);
    await page.waitForFunction(() => window.__benchResult || window.__benchError, null, {
      timeout: o.timeoutS * 1000, polling: 500 });
    const error = await page.evaluate(() => window.__benchError);
    if (error) throw new Error(`the benchmark page failed: ${error}`);
    const result = await page.evaluate(() => window.__benchResult);
    result.started = started;
    result.loadBefore = loadBefore;
    result.loadAfter = loadavg();
    result.hostCpu = cpus()[0]?.model;
    result.hostCores = cpus().length;
    result.chromium = browser.version();
    result.gflopPerIg = (2 * result.macsPerForward * (2 * result.config.steps + 2)) / 1e9;
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n');
    printTable(result);
    console.log(`wrote ${o.out}`);
    if (result.engines.some((e) => e.kind === 'igscope' && e.error)) failed = true;
    if (pageErrors.length) {
      console.error(`${pageErrors.length} uncaught error(s) in the page`);
      failed = true;
    }
  } catch (err) {
    console.error(String(err && err.stack ? err.stack : err));
    failed = true;
  } finally {
    await browser.close();
    await server.close();
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
