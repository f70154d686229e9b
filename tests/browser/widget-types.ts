// Compiled (not run) by the widget's browser tests with tsc --noEmit
// --strict: the package's index.d.ts must type a typical use of the element.
import { DEFAULT_MODEL, IgscopeExplorer, IgscopeResult } from 'igscope-explorer';

const el: IgscopeExplorer = document.createElement('igscope-explorer');
el.setAttribute('model', DEFAULT_MODEL);
el.addEventListener('igscope-result', (e) => {
  const gap: number | null = e.detail.gap;
  const build: 'threaded-relaxed' | 'threaded' | 'single' | null = e.detail.build;
  const r: IgscopeResult = e.detail.result;
  console.log(gap, build, r.f_input, r.attributions.length);
});
el.addEventListener('igscope-error', (e) => console.log(e.detail.message));
const ready: Promise<void> = el.setInput(new Float32Array(784));
el.setBaseline('blur:4');
el.setBaseline(new Float32Array(784));
el.setBaseline(null);
const state: 'idle' | 'loading' | 'computing' | 'done' | 'error' = el.state;
const threads: number | undefined = el.engineInfo?.threads;
const isa: string | undefined = el.engineInfo?.isa;
const last: IgscopeResult | null = el.result;
console.log(ready, state, threads, isa, last);
