// A fixed arithmetic loop for a given time; replies with the iterations done.
// bench.js runs it in one worker, then in two at once: the ratio of the
// totals says how many cores were free for the page.
self.onmessage = (e) => {
  const end = performance.now() + e.data.ms;
  let n = 0;
  let x = 1.0001;
  while (performance.now() < end) {
    for (let i = 0; i < 10000; ++i) x = x * 1.0000001 + 1e-9;
    n += 10000;
  }
  self.postMessage({ n, x });
};
