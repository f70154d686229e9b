// Attribution maps on canvases: signed (red for the target, blue against),
// magnitude, positive only, or an overlay on the input; the colour scale is
// clipped at a percentile of the magnitudes so a few extreme pixels do not
// wash out the rest.
import { PIXELS, SIZE } from './image-input.js';

export const MODES = {
  signed: 'signed (red for, blue against)',
  magnitude: 'magnitude',
  positive: 'positive only',
  overlay: 'overlay on the input',
};

export function flatten(rows) {
  const out = new Float32Array(PIXELS);
  let i = 0;
  for (const row of rows) for (const v of row) out[i++] = Array.isArray(v) ? v[0] : v;
  return out;
}

// The value at `percent` (0..100) of the sorted magnitudes (positive values
// only for mode 'positive').
export function clipScale(values, percent, mode) {
  const mags = [];
  for (const v of values) {
    if (mode === 'positive') {
      if (v > 0) mags.push(v);
    } else {
      mags.push(Math.abs(v));
    }
  }
  if (!mags.length) return 0;
  mags.sort((a, b) => a - b);
  const k = Math.min(mags.length - 1, Math.max(0, Math.ceil((percent / 100) * mags.length) - 1));
  return mags[k];
}

// RGBA pixels (SIZE x SIZE) of one attribution map.
export function heatmapPixels(values, { mode = 'signed', percentile = 99, alpha = 0.7, input = null } = {}) {
  const scale = clipScale(values, percentile, mode) || 1;
  const data = new Uint8ClampedArray(PIXELS * 4);
  for (let i = 0; i < PIXELS; ++i) {
    const t = Math.max(-1, Math.min(1, values[i] / scale));
    let r;
    let g;
    let b;
    let a = 255;
    if (mode === 'magnitude') {
      const m = Math.abs(t);
      // black -> red -> yellow -> white
      r = Math.min(1, 3 * m);
      g = Math.min(1, Math.max(0, 3 * m - 1));
      b = Math.max(0, 3 * m - 2);
      [r, g, b] = [r * 255, g * 255, b * 255];
    } else if (mode === 'positive') {
      const p = Math.max(0, t);
      [r, g, b] = [255, 255 * (1 - p), 255 * (1 - p)];
    } else {
      [r, g, b] = t >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 + t), 255 * (1 + t), 255];
    }
    if (mode === 'overlay') {
      const gray = input ? input[i] * 255 : 0;
      const w = Math.abs(t) * alpha;
      const [cr, cg, cb] = t >= 0 ? [230, 20, 20] : [30, 60, 240];
      [r, g, b] = [gray * (1 - w) + cr * w, gray * (1 - w) + cg * w, gray * (1 - w) + cb * w];
      a = 255;
    }
    data[4 * i] = r;
    data[4 * i + 1] = g;
    data[4 * i + 2] = b;
    data[4 * i + 3] = a;
  }
  return data;
}

// Draws a map at `size` pixels a side, each attribution a sharp square.
export function drawHeatmap(canvas, values, options, size = canvas.width || SIZE * 10) {
  const small = new OffscreenCanvas(SIZE, SIZE);
  small.getContext('2d').putImageData(new ImageData(heatmapPixels(values, options), SIZE, SIZE), 0, 0);
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, size, size);
  ctx.drawImage(small, 0, 0, size, size);
}
