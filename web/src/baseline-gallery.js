// The same input's Integrated Gradients under every kind of baseline, side
// by side. Filled in after the main attribution, one tile at a time, in the
// worker's idle time; a new request cancels it and it resumes afterwards.
import { drawHeatmap, flatten } from './heatmap.js';

export const GALLERY_BASELINES = [
  { spec: 'black', label: 'black' },
  { spec: 'white', label: 'white' },
  { spec: 'uniform@0', label: 'uniform noise' },
  { spec: 'gaussian:0.3@0', label: 'gaussian σ 0.3' },
  { spec: 'blur:3', label: 'blur σ 3 px' },
  { spec: 'maxdist', label: 'max distance' },
  { spec: 'avg:8:uniform@0', label: 'avg of 8 uniform' },
  { spec: 'mean', label: 'mean training image' },
  { spec: 'train:8@0', label: '8 training images' },
];

export class BaselineGallery {
  constructor(container) {
    this.container = container;
    this.key = null;
    this.results = new Map();
    this.tiles = new Map();
    for (const b of GALLERY_BASELINES) {
      const tile = document.createElement('figure');
      tile.className = 'tile pending';
      tile.setAttribute('data-testid', `gallery-${b.spec}`);
      const canvas = document.createElement('canvas');
      canvas.className = 'pixel mid';
      canvas.width = 140;
      canvas.height = 140;
      const caption = document.createElement('figcaption');
      caption.innerHTML = '<strong></strong><span class="gap"></span>';
      caption.querySelector('strong').textContent = b.label;
      tile.append(canvas, caption);
      container.append(tile);
      this.tiles.set(b.spec, { tile, canvas, caption });
    }
  }

  // The requests still missing for `key` (the input, target and model).
  missing(key, target) {
    if (key !== this.key) {
      this.key = key;
      this.results.clear();
      for (const { tile } of this.tiles.values()) tile.classList.add('pending');
    }
    return GALLERY_BASELINES.filter((b) => !this.results.has(b.spec)).map((b) => ({
      key: b.spec,
      request: { method: 'ig', target, baseline: b.spec, steps: 32, quadrature: 'gausslegendre' },
    }));
  }

  add(spec, result, renderOptions) {
    const t = this.tiles.get(spec);
    if (!t) return;
    this.results.set(spec, result);
    t.tile.classList.remove('pending');
    this.draw(spec, renderOptions);
  }

  draw(spec, renderOptions) {
    const t = this.tiles.get(spec);
    const result = this.results.get(spec);
    if (!result) return;
    const gap = t.caption.querySelector('.gap');
    if (result.error) {
      gap.textContent = result.error;
      return;
    }
    drawHeatmap(t.canvas, flatten(result.attributions), renderOptions, 140);
    const rel = result.relative_gap;
    gap.textContent = `F(x′) ${result.f_baseline.toFixed(2)}, gap ${rel === null ? '–' : `${(100 * Math.abs(rel)).toFixed(2)}%`}`;
  }

  redraw(renderOptions) {
    for (const spec of this.results.keys()) this.draw(spec, renderOptions);
  }
}
