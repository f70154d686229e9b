// Prints the page modules (web/src/*.js) the widget needs, one path a line:
// igscope-explorer.js and everything it reaches through relative static
// imports and `new URL('./x.js', import.meta.url)` (the worker). scripts/web
// copies them into the package's src/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');
const patterns = [
  /\b(?:import|export)\s[^'";]*?\bfrom\s*['"](\.\/[^'"]+)['"]/g,
  /\bimport\s*['"](\.\/[^'"]+)['"]/g,
  /\bnew URL\(\s*['"](\.\/[^'"]+\.js)['"]/g,
];
const seen = new Set();
const queue = ['igscope-explorer.js'];
while (queue.length) {
  const name = queue.shift();
  if (seen.has(name)) continue;
  seen.add(name);
  const text = fs.readFileSync(path.join(src, name), 'utf8');
  for (const re of patterns) for (const m of text.matchAll(re)) queue.push(path.posix.normalize(m[1]));
}
for (const name of [...seen].sort()) console.log(path.relative(process.cwd(), path.join(src, name)));
