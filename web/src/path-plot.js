// The path plot: the explained output F along alpha, from the baseline
// (alpha = 0) to the input (alpha = 1), with the gradient along the path
// (the slope dF/dalpha) on a second axis. Drawn with uPlot.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export class PathPlot {
  constructor(container) {
    this.container = container;
    this.plot = null;
    this.empty = document.createElement('p');
    this.empty.className = 'muted';
    this.empty.textContent = 'This method has no path.';
    container.append(this.empty);
  }

  data(result) {
    const samples = (result.path || []).slice().sort((a, b) => a.alpha - b.alpha);
    const xs = [];
    const fs = [];
    const slopes = [];
    const push = (x, f, s) => {
      xs.push(x);
      fs.push(f);
      slopes.push(s);
    };
    const hasEnds = result.f_baseline !== null && result.f_input !== null && result.method === 'ig';
    if (hasEnds && (!samples.length || samples[0].alpha > 0)) push(0, result.f_baseline, null);
    for (const s of samples) push(s.alpha, s.f, s.slope);
    if (hasEnds && (!samples.length || samples[samples.length - 1].alpha < 1)) push(1, result.f_input, null);
    return [xs, fs, slopes];
  }

  update(result) {
    const hasPath = Array.isArray(result.path) && result.path.length > 0;
    this.empty.hidden = hasPath;
    if (!hasPath) {
      if (this.plot) {
        this.plot.destroy();
        this.plot = null;
      }
      return;
    }
    const data = this.data(result);
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    const width = Math.max(280, this.container.clientWidth || 420);
    this.plot = new uPlot(
      {
        width,
        height: 220,
        scales: { x: { time: false, range: [0, 1] } },
        axes: [
          { label: 'alpha (0 = baseline, 1 = input)' },
          { label: 'F', scale: 'y' },
          { label: 'dF/dalpha', scale: 'slope', side: 1, grid: { show: false } },
        ],
        series: [
          { label: 'alpha', value: (u, v) => (v == null ? '' : v.toFixed(3)) },
          { label: 'F', stroke: '#c0392b', width: 2, points: { show: true, size: 5 }, scale: 'y' },
          { label: 'slope', stroke: '#2e6fdb', width: 1, dash: [4, 4], scale: 'slope', spanGaps: true },
        ],
      },
      data,
      this.container,
    );
  }
}
