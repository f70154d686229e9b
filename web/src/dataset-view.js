// The data set view: per class, the mean signed and the mean absolute
// attribution over test images of that class (each explained for its
// labelled class), as `igscope classmaps` wrote them at build time
// (data/classmaps/classmaps.json). A skew such as "the model looks at the
// border" shows as mass away from the garment. Loaded when first opened.
import { drawHeatmap } from './heatmap.js';

export class DatasetView {
  constructor({ root, url, onError }) {
    this.root = root;
    this.url = url;
    this.onError = onError;
    this.loaded = null;
    const body = document.createElement('div');
    body.innerHTML = `
      <p data-testid="classmaps-caption" class="muted"></p>
      <label>clip at percentile <input type="range" data-testid="classmaps-clip" min="50" max="100" step="0.5" value="99" /></label>
      <div data-testid="classmaps" class="classmaps"></div>`;
    root.append(body);
    this.caption = body.querySelector('[data-testid="classmaps-caption"]');
    this.grid = body.querySelector('[data-testid="classmaps"]');
    this.clip = body.querySelector('[data-testid="classmaps-clip"]');
    this.clip.addEventListener('input', () => this.draw());
    root.addEventListener('toggle', () => {
      if (root.open) this.load();
    });
  }

  load() {
    if (!this.loaded) {
      this.loaded = fetch(this.url)
        .then((response) => {
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          return response.json();
        })
        .then((maps) => {
          this.maps = maps;
          this.build();
          this.root.dataset.state = 'done';
        })
        .catch((e) => {
          this.loaded = null;
          this.root.dataset.state = 'error';
          this.onError(`Could not load the class maps: ${e.message}`);
        });
    }
    return this.loaded;
  }

  build() {
    const m = this.maps;
    const model = String(m.model).split('/').pop();
    this.caption.textContent =
      `${m.method === 'ig' ? 'IG' : m.method}, baseline ${m.baseline}, ${m.steps} ${m.quadrature === 'gausslegendre' ? 'Gauss-Legendre' : m.quadrature} steps, ` +
      `${model}, over the first ${m.images} of the 10,000 test images (a limit that keeps the build short; ` +
      '`igscope classmaps` without --limit takes all of them). Each image is explained for its labelled class; ' +
      'left the mean signed map (red for, blue against), right the mean absolute map.';
    this.caption.dataset.images = String(m.images);
    this.grid.replaceChildren();
    this.canvases = [];
    for (const c of m.classes) {
      const fig = document.createElement('figure');
      fig.setAttribute('data-testid', `classmap-${c.index}`);
      Object.assign(fig.dataset, {
        count: String(c.count),
        meanSum: String(c.mean_sum),
        meanAbsSum: String(c.mean_abs_sum),
        meanRelativeGap: c.mean_relative_gap === null ? '' : String(c.mean_relative_gap),
      });
      const signed = document.createElement('canvas');
      const abs = document.createElement('canvas');
      signed.className = abs.className = 'pixel';
      const cap = document.createElement('figcaption');
      const gap = c.mean_relative_gap === null ? '–' : `${(100 * c.mean_relative_gap).toFixed(2)}%`;
      cap.textContent = `${c.name}: ${c.count} images, mean Σ ${c.mean_sum.toFixed(3)}, mean Σ|a| ${c.mean_abs_sum.toFixed(3)}, mean gap ${gap}`;
      fig.append(signed, abs, cap);
      this.grid.append(fig);
      this.canvases.push({ c, signed, abs });
    }
    this.draw();
  }

  draw() {
    if (!this.canvases) return;
    const percentile = Number(this.clip.value);
    for (const { c, signed, abs } of this.canvases) {
      if (!c.count) continue;
      drawHeatmap(signed, Float32Array.from(c.mean_signed), { mode: 'signed', percentile }, 112);
      drawHeatmap(abs, Float32Array.from(c.mean_abs), { mode: 'magnitude', percentile }, 112);
    }
  }
}
