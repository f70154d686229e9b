// Browser tests of ONNX import in the page. The model is a PyTorch CNN
// exported to ONNX at opset 17 by the ONNX test-set builder
// (tests/oracle/onnx_models.py: small_mixed, 28x28 grey, 10 classes, seeded
// weights); the native side converts the same file with `igscope import` and
// computes with `igscope attribute`. Checked: the file picked as .onnx, with
// its normalisation typed into the page's fields, and the same file dropped
// on the page, each give the native map within 1e-4; an LSTM is refused with
// the operator and its node named, one with its weights in a side file, a
// model the page cannot show (the
// tabular regressor) and a mean that is not a number are refused with their
// reasons; after every refusal the imported model keeps computing the same
// map.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const TOLERANCE = 1e-4;
// small_mixed's normalisation (onnx_models.py: Fashion-MNIST's mean and std).
const MEAN = '0.286';
const STD = '0.353';

// Exports the ONNX files and converts the CNN natively; paths in `tmp`.
export function buildOnnxFixture({ root, cli, tmp }) {
  const dir = path.join(tmp, 'onnx');
  execFileSync('/usr/bin/python3', [path.join(root, 'tests/oracle/onnx_models.py'), '--out', dir, '--only', 'small_mixed,lstm_tiny'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const onnx = path.join(dir, 'small_mixed_op17_28.onnx');
  const imported = path.join(dir, 'small_mixed.safetensors');
  execFileSync(cli, ['import', onnx, '--out', imported, '--mean', MEAN, '--std', STD], { stdio: ['ignore', 'ignore', 'inherit'] });
  const lstm = path.join(dir, 'lstm_tiny_op13_28.onnx');
  // The same model with its weights in a side file (ONNX external data).
  const external = path.join(dir, 'external', 'small_mixed_external.onnx');
  fs.mkdirSync(path.dirname(external));
  execFileSync('/usr/bin/python3', ['-c', [
    'import onnx, sys',
    'm = onnx.load(sys.argv[1])',
    "onnx.save_model(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location='weights.bin', size_threshold=0)",
  ].join('\n'), onnx, external]);
  const tabular = path.join(root, 'model_weights/diabetes_mlp.safetensors');
  return { onnx, imported, lstm, external, tabular, mean: MEAN, std: STD };
}

async function alertText(page) {
  await page.locator('[role=alert]').waitFor({ state: 'visible' });
  const text = (await page.locator('[role=alert]').innerText()).replace(/\s+/g, ' ').replace('×', '').trim();
  await page.click('#error-close');
  return text;
}

// Waits for the page to switch to `model` and draw its map.
async function modelLoaded(page, model, settled) {
  await page.waitForFunction((m) => window.igscope.model() === m, model, { timeout: 60000 });
  await settled(page);
}

async function dropFile(page, file, name) {
  const bytes = Array.from(fs.readFileSync(file));
  const transfer = await page.evaluateHandle(
    ({ bytes, name }) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], name));
      return dt;
    },
    { bytes, name },
  );
  await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
}

export async function onnxTests({ browser, url, fixture, native, check, errors, settled, setControl, maxAbsDiff, watchConsole }) {
  const context = await browser.newContext();
  const page = await context.newPage();
  watchConsole(page, errors, 'onnx page');
  try {
    await page.goto(url);
    await page.locator('#samples .sample').first().waitFor();
    await settled(page, 120000);
    const pick = await page.evaluate(() => document.querySelectorAll('#samples .sample')[7].getAttribute('data-testid'));
    const index = Number(pick.replace('sample-', ''));
    const target = 2;
    await page.click(`[data-testid=${pick}]`);
    await page.selectOption('#target', String(target));
    await page.selectOption('#baseline', 'black');
    await setControl(page, 'steps', 32);
    await settled(page);
    const ref = native(fixture.imported, index, target, 'black');
    const label = `test:${index}, class ${target}, black, 32 GL`;

    // Picked, with the normalisation in the fields.
    await page.locator('#onnx-options summary').click();
    await page.fill('#onnx-mean', fixture.mean);
    await page.fill('#onnx-std', fixture.std);
    await page.setInputFiles('#model-upload', fixture.onnx);
    const name = `upload:${path.basename(fixture.onnx)}`;
    await modelLoaded(page, name, settled);
    const picked = await page.evaluate(() => window.igscope.result());
    const shown = await page.locator('#model option:checked').innerText();
    const dPicked = maxAbsDiff(picked.attributions, ref.attributions);
    check(
      `onnx: a picked .onnx (small_mixed, mean ${fixture.mean}, std ${fixture.std}) gives the map of igscope import + attribute (${label}) within ${TOLERANCE}`,
      dPicked <= TOLERANCE && picked.target === target && shown.includes(path.basename(fixture.onnx)),
      `max |diff| ${dPicked.toExponential(2)}, largest |attribution| ${Math.max(...ref.attributions.flat(Infinity).map(Math.abs)).toExponential(2)}; listed as "${shown}"`,
    );

    // Refusals: each names its reason, and the imported model keeps working.
    const kept = async (what) => {
      await setControl(page, 'steps', 33);
      await settled(page);
      await setControl(page, 'steps', 32);
      await settled(page);
      const r = await page.evaluate(() => ({ model: window.igscope.model(), result: window.igscope.result() }));
      const d = maxAbsDiff(r.result.attributions, ref.attributions);
      check(`onnx: after ${what}, the imported model is kept and computes the same map`, r.model === name && d <= TOLERANCE, `max |diff| ${d.toExponential(2)}`);
    };
    await page.setInputFiles('#model-upload', fixture.lstm);
    const lstm = await alertText(page);
    check('onnx: an LSTM model is refused, naming the operator, its node and what is supported', /LSTM \(node '[^']+'\)/.test(lstm) && /Conv, BatchNormalization/.test(lstm), lstm.slice(0, 300));
    await kept('the LSTM');
    await page.setInputFiles('#model-upload', fixture.tabular);
    const shape = await alertText(page);
    check('onnx: a model of another input (the tabular regressor) is refused: the page shows 28x28 grey images', /\[10\]/.test(shape) && /28x28 grey/.test(shape), shape);
    await kept('a model of another input');
    await page.setInputFiles('#model-upload', fixture.external);
    const external = await alertText(page);
    check('onnx: a model with its weights in a side file (external data) is refused with that reason', /side file \(ONNX external data\)/.test(external), external);
    await kept('the external-data model');
    await page.fill('#onnx-mean', '0.2,abc');
    await page.setInputFiles('#model-upload', fixture.onnx);
    const mean = await alertText(page);
    check("onnx: a mean that is not a number is refused with the field's name", /the mean: 'abc' is not a number/.test(mean), mean);
    await kept('a bad mean');

    // Dropped on the page: first with another mean (a different model, so a
    // different map: the fields reach the importer), then with the right one.
    await page.fill('#onnx-mean', '0.5');
    await dropFile(page, fixture.onnx, 'dropped.onnx');
    await modelLoaded(page, 'upload:dropped.onnx', settled);
    const other = await page.evaluate(() => window.igscope.result());
    const dOther = maxAbsDiff(other.attributions, ref.attributions);
    await page.fill('#onnx-mean', fixture.mean);
    await page.selectOption('#model', 'fashion_cnn_smelu.safetensors');
    await modelLoaded(page, 'fashion_cnn_smelu.safetensors', settled);
    await dropFile(page, fixture.onnx, 'small_mixed.onnx');
    await modelLoaded(page, 'upload:small_mixed.onnx', settled);
    const dropped = await page.evaluate(() => window.igscope.result());
    const dDropped = maxAbsDiff(dropped.attributions, ref.attributions);
    check(
      `onnx: the .onnx dropped on the page gives the native map within ${TOLERANCE}, and with mean 0.5 instead a different one`,
      dDropped <= TOLERANCE && dOther > 100 * TOLERANCE,
      `max |diff| ${dDropped.toExponential(2)}; with mean 0.5: ${dOther.toExponential(2)}`,
    );
  } finally {
    await context.close();
  }
}
