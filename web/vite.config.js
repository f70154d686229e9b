// Vite configuration for the live page. The page lives in web/; the wasm
// modules, models and data samples are copied by scripts/web into
// build-web/public and served as they are. The dev server and `vite preview`
// send the COOP/COEP headers (so the page is cross-origin isolated and the
// threaded build can run) unless IGSCOPE_ISOLATION=off.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export function isolationHeaders(isolated) {
  const headers = { 'Cross-Origin-Resource-Policy': 'same-origin' };
  if (isolated) {
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
    headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
  }
  return headers;
}

// Module scripts are MIME-checked and wasm streaming compilation needs
// application/wasm: set both explicitly for files under publicDir.
export function mimeTypes() {
  const fix = (req, res, next) => {
    const path = (req.url || '').split('?')[0];
    if (path.endsWith('.mjs') || path.endsWith('.js')) res.setHeader('Content-Type', 'text/javascript');
    else if (path.endsWith('.wasm')) res.setHeader('Content-Type', 'application/wasm');
    next();
  };
  return {
    name: 'igscope-mime-types',
    configureServer(server) {
      server.middlewares.use(fix);
    },
    configurePreviewServer(server) {
      server.middlewares.use(fix);
    },
  };
}

export function igscopeConfig({ isolated = process.env.IGSCOPE_ISOLATION !== 'off' } = {}) {
  const headers = isolationHeaders(isolated);
  return {
    root: here,
    publicDir: `${here}../build-web/public`,
    build: {
      outDir: `${here}../build-web/dist`,
      emptyOutDir: true,
      target: 'es2022',
    },
    worker: { format: 'es' },
    server: { headers, host: '127.0.0.1', port: 8173 },
    preview: { headers, host: '127.0.0.1', port: 8173 },
    plugins: [mimeTypes()],
    appType: 'mpa',
    logLevel: 'warn',
  };
}

export default defineConfig(() => igscopeConfig());
