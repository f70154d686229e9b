// The prediction as one bar per class; clicking a bar explains that class.
export class ProbabilityBars {
  constructor(container, onPick) {
    this.container = container;
    this.onPick = onPick;
    this.rows = [];
  }

  setClasses(classes) {
    this.container.replaceChildren();
    this.rows = classes.map((name, k) => {
      const row = document.createElement('button');
      row.type = 'button';
      row.className = 'bar';
      row.setAttribute('data-testid', `prob-${k}`);
      row.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
      row.querySelector('.name').textContent = name;
      row.addEventListener('click', () => this.onPick(k));
      this.container.append(row);
      return row;
    });
  }

  update(probabilities, predicted, target) {
    for (const [k, row] of this.rows.entries()) {
      const p = probabilities[k];
      row.querySelector('.fill').style.width = `${(100 * p).toFixed(1)}%`;
      row.querySelector('.value').textContent = `${(100 * p).toFixed(1)}%`;
      row.classList.toggle('predicted', k === predicted);
      row.classList.toggle('target', k === target);
    }
  }
}
