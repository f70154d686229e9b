// The grid of test images: each with its true and predicted class, filtered
// to the correct or misclassified ones, or to one class.
import { drawGray } from './image-input.js';

export class SampleGrid {
  constructor({ container, filter, classFilter, count, onPick }) {
    Object.assign(this, { container, filter, classFilter, count, onPick });
    this.samples = [];
    this.classes = [];
    this.predicted = null;
    this.selected = -1;
    filter.addEventListener('input', () => this.applyFilter());
    classFilter.addEventListener('input', () => this.applyFilter());
  }

  // samples: [{index, label, pixels: Float32Array}]
  setSamples(samples, classes) {
    this.samples = samples;
    this.classes = classes;
    for (const [k, name] of classes.entries()) {
      const opt = document.createElement('option');
      opt.value = String(k);
      opt.textContent = name;
      this.classFilter.append(opt);
    }
    this.container.replaceChildren();
    this.tiles = samples.map((s, i) => {
      const tile = document.createElement('button');
      tile.type = 'button';
      tile.className = 'sample';
      tile.dataset.testid = `sample-${s.index}`;
      tile.setAttribute('data-testid', `sample-${s.index}`);
      tile.dataset.position = String(i);
      const canvas = document.createElement('canvas');
      canvas.className = 'pixel thumb';
      drawGray(canvas, s.pixels);
      const label = document.createElement('span');
      label.className = 'labels';
      tile.append(canvas, label);
      tile.addEventListener('click', () => this.onPick(i));
      this.container.append(tile);
      return tile;
    });
    this.refreshLabels();
  }

  setPredicted(predicted) {
    this.predicted = predicted;
    this.refreshLabels();
  }

  select(i) {
    this.selected = i;
    for (const [k, tile] of this.tiles.entries()) tile.classList.toggle('selected', k === i);
  }

  refreshLabels() {
    for (const [i, tile] of this.tiles.entries()) {
      const s = this.samples[i];
      const p = this.predicted ? this.predicted[i] : null;
      const label = tile.querySelector('.labels');
      const truth = this.classes[s.label];
      label.textContent = p === null ? truth : p === s.label ? truth : `${truth} → ${this.classes[p]}`;
      tile.classList.toggle('wrong', p !== null && p !== s.label);
      tile.title = `test image ${s.index}: ${truth}${p === null ? '' : `, predicted ${this.classes[p]}`}`;
    }
    this.applyFilter();
  }

  applyFilter() {
    const mode = this.filter.value;
    const cls = Number(this.classFilter.value);
    let shown = 0;
    for (const [i, tile] of this.tiles.entries()) {
      const s = this.samples[i];
      const p = this.predicted ? this.predicted[i] : null;
      const ok =
        (cls < 0 || s.label === cls) &&
        (mode === 'all' || p === null || (mode === 'correct' ? p === s.label : p !== s.label));
      tile.hidden = !ok;
      if (ok) ++shown;
    }
    this.count.textContent = `${shown} of ${this.samples.length}`;
  }
}
