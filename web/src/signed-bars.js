// Signed values as horizontal bars around a centre line: red to the right
// for positive values, blue to the left for negative ones, each scaled by
// the largest magnitude. Every row carries its value in data-value.
export function drawSignedBars(container, rows, { digits = 4, testid = 'bar' } = {}) {
  const largest = Math.max(1e-30, ...rows.map((r) => Math.abs(r.value)));
  container.replaceChildren();
  for (const [i, r] of rows.entries()) {
    const row = document.createElement('div');
    row.className = 'sbar';
    row.setAttribute('data-testid', `${testid}-${i}`);
    row.dataset.value = String(r.value);
    row.innerHTML =
      '<span class="name"></span><span class="track"><span class="half neg"><span class="fill"></span></span>' +
      '<span class="half pos"><span class="fill"></span></span></span><span class="value"></span>';
    row.querySelector('.name').textContent = r.label;
    if (r.title) row.title = r.title;
    const width = `${((100 * Math.abs(r.value)) / largest).toFixed(1)}%`;
    row.querySelector(r.value < 0 ? '.neg .fill' : '.pos .fill').style.width = width;
    row.querySelector('.value').textContent = formatSigned(r.value, digits);
    container.append(row);
  }
}

export function formatSigned(v, digits = 4) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  const text = a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(digits - 1) : v.toFixed(digits);
  return v > 0 ? `+${text}` : text;
}

// Shows `text` in el and keeps the exact value in data-value (empty for none).
export function showValue(el, value, text) {
  el.textContent = text;
  el.dataset.value = value === null || value === undefined ? '' : String(value);
}
