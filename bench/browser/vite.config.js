// Vite configuration for the browser benchmark (bench/browser). Serves the
// benchmark page with the wasm modules, models and data samples that
// scripts/web copies into build-web/public, and TensorFlow.js's wasm binaries
// under /tfjs-wasm/. Cross-origin isolated (COOP/COEP), so the threaded
// builds (igscope's and TF.js's) can start.
import { createReadStream, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { isolationHeaders, mimeTypes } from '../../web/vite.config.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const tfjsWasmDist = fileURLToPath(new URL('../../node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));
const headers = isolationHeaders(true);

// TF.js's .wasm files under /tfjs-wasm/.
function tfjsWasmFiles() {
  const serve = (req, res, next) => {
    const path = (req.url || '').split('?')[0];
    const m = /^\/tfjs-wasm\/(tfjs-backend-wasm[a-z-]*\.wasm)$/.exec(path);
    if (m && existsSync(tfjsWasmDist + m[1])) {
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.setHeader('Content-Type', 'application/wasm');
      createReadStream(tfjsWasmDist + m[1]).pipe(res);
      return;
    }
    next();
  };
  return {
    name: 'igscope-bench-tfjs-wasm',
    configureServer(server) {
      server.middlewares.use(serve);
    },
    configurePreviewServer(server) {
      server.middlewares.use(serve);
    },
  };
}

export default defineConfig({
  root: here,
  publicDir: `${here}../../build-web/public`,
  cacheDir: `${here}../../node_modules/.vite-bench`,
  worker: { format: 'es' },
  server: { headers, host: '127.0.0.1', hmr: false },
  preview: { headers, host: '127.0.0.1' },
  plugins: [mimeTypes(), tfjsWasmFiles()],
  logLevel: 'warn',
});
