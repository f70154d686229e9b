// The controls: their values as one attribution request for the module, the
// baseline spec string, and which controls apply to the chosen method and
// baseline. Sliders report while dragged (input events), so every move asks
// for a new attribution.
const $ = (id) => document.getElementById(id);

const PATH_METHODS = new Set(['ig', 'smoothgrad_ig', 'blurig', 'guidedig']);
const BASELINE_METHODS = new Set(['ig', 'smoothgrad_ig', 'guidedig']);
const SMOOTHGRAD_METHODS = new Set(['smoothgrad', 'smoothgrad_ig']);

export function number(id) {
  return Number($(id).value);
}

export function baselineSpec() {
  const kind = $('baseline').value;
  const seed = number('b-seed');
  switch (kind) {
    case 'constant':
      return `constant:${number('b-constant')}`;
    case 'uniform':
      return `uniform@${seed}`;
    case 'gaussian':
      return `gaussian:${number('b-sigma')}@${seed}`;
    case 'blur':
      return `blur:${number('b-blur')}`;
    case 'avg': {
      const noise = $('b-avg-kind').value === 'gaussian' ? `gaussian:${number('b-sigma')}` : 'uniform';
      return `avg:${number('b-count')}:${noise}@${seed}`;
    }
    case 'image':
      return 'image:custom';
    case 'train':
      return `train:${number('b-count')}@${seed}`;
    default:
      return kind;
  }
}

// The module's request for the current controls (only the keys that apply).
export function currentRequest() {
  const method = $('method').value;
  const request = { method, target: number('target'), output: $('output').value };
  if (BASELINE_METHODS.has(method)) request.baseline = baselineSpec();
  if (PATH_METHODS.has(method)) {
    request.steps = number('steps');
    if (method !== 'guidedig') request.quadrature = $('quadrature').value;
  }
  if (SMOOTHGRAD_METHODS.has(method)) {
    request.smoothgrad = { samples: number('sg-samples'), sigma: number('sg-sigma'), statistic: $('sg-statistic').value };
    request.seed = number('b-seed');
  }
  if (method === 'blurig') request.blur_max_sigma = number('blur-max-sigma');
  return request;
}

export function usesBaseline(method) {
  return BASELINE_METHODS.has(method);
}

// Shows each slider's value next to it and only the controls that apply.
export function refreshControls() {
  for (const out of document.querySelectorAll('output[for]')) {
    const input = $(out.htmlFor.value || out.getAttribute('for'));
    if (input) out.textContent = input.value;
  }
  const method = $('method').value;
  for (const el of document.querySelectorAll('[data-for]')) {
    const kind = el.dataset.for;
    el.hidden =
      (kind === 'path' && !PATH_METHODS.has(method)) ||
      (kind === 'smoothgrad' && !SMOOTHGRAD_METHODS.has(method)) ||
      (kind === 'blurig' && method !== 'blurig');
  }
  if (method === 'guidedig') $('quadrature').closest('label').hidden = true;
  const baseline = $('baseline').value;
  $('baseline-controls').classList.toggle('disabled', !BASELINE_METHODS.has(method));
  for (const el of document.querySelectorAll('[data-baseline]')) {
    el.hidden = !el.dataset.baseline.split(' ').includes(baseline);
  }
  if (baseline === 'avg') $('b-sigma').closest('label').hidden = $('b-avg-kind').value !== 'gaussian';
  $('baseline-spec').textContent = BASELINE_METHODS.has(method) ? baselineSpec() : '(this method uses no baseline)';
}

// Calls `onChange` on every edit of the attribution controls and `onRender`
// on edits that only change how the result is drawn.
export function bindControls({ onChange, onRender }) {
  const compute = [
    'method', 'quadrature', 'steps', 'sg-samples', 'sg-sigma', 'sg-statistic', 'blur-max-sigma', 'target', 'output',
    'baseline', 'b-constant', 'b-sigma', 'b-blur', 'b-count', 'b-avg-kind', 'b-seed',
  ];
  for (const id of compute) {
    $(id).addEventListener('input', () => {
      refreshControls();
      onChange(id);
    });
  }
  for (const id of ['render-mode', 'clip', 'alpha']) {
    $(id).addEventListener('input', () => {
      refreshControls();
      onRender();
    });
  }
  refreshControls();
}
