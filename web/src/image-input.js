// The model's input: 28x28 grayscale in [0, 1], 0 the black background and
// garments light. Uploaded pictures are fitted into 28x28 (aspect kept),
// turned to gray and optionally inverted; transforms (zoom, rotation, shift)
// resample the image to watch a prediction break.
export const SIZE = 28;
export const PIXELS = SIZE * SIZE;

// Decodes a File as an image. Rejects with a readable message when the file
// is not an image the browser can decode.
export async function decodeImageFile(file) {
  if (!file) throw new Error('no file was chosen');
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    const type = file.type ? ` (${file.type})` : '';
    throw new Error(`"${file.name}"${type} is not an image this browser can decode`);
  }
  if (!bitmap.width || !bitmap.height) throw new Error(`"${file.name}" has no pixels`);
  return bitmap;
}

// Gray 28x28 of a decoded image, fitted into the square on black (after
// inversion the padding stays background). Returns {pixels, suggestInvert}:
// suggestInvert is true when the picture's border is light (a dark garment
// photographed on white), the opposite of the training images.
export function toGray28(bitmap) {
  const canvas = new OffscreenCanvas(SIZE, SIZE);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const scale = Math.min(SIZE / bitmap.width, SIZE / bitmap.height);
  const w = bitmap.width * scale;
  const h = bitmap.height * scale;
  // Pad with the picture's own border colour so inversion treats it alike.
  const probe = new OffscreenCanvas(1, 1).getContext('2d', { willReadFrequently: true });
  probe.drawImage(bitmap, 0, 0, 1, 1, 0, 0, 1, 1);
  const [r0, g0, b0] = probe.getImageData(0, 0, 1, 1).data;
  ctx.fillStyle = `rgb(${r0}, ${g0}, ${b0})`;
  ctx.fillRect(0, 0, SIZE, SIZE);
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, (SIZE - w) / 2, (SIZE - h) / 2, w, h);
  const data = ctx.getImageData(0, 0, SIZE, SIZE).data;
  const pixels = new Float32Array(PIXELS);
  for (let i = 0; i < PIXELS; ++i) {
    const a = data[4 * i + 3] / 255;
    const y = (0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2]) / 255;
    pixels[i] = y * a + (1 - a);
  }
  let border = 0;
  let count = 0;
  for (let i = 0; i < SIZE; ++i) {
    for (const [x, y] of [[i, 0], [i, SIZE - 1], [0, i], [SIZE - 1, i]]) {
      border += pixels[y * SIZE + x];
      ++count;
    }
  }
  return { pixels, suggestInvert: border / count > 0.5 };
}

export function invert(pixels) {
  return pixels.map((v) => 1 - v);
}

// Resamples an image with bilinear interpolation: zoom about the centre,
// rotate by degrees, then shift by (dx, dy) pixels. Outside is background (0).
export function transform(pixels, { zoom = 1, rotate = 0, dx = 0, dy = 0 } = {}) {
  if (zoom === 1 && rotate === 0 && dx === 0 && dy === 0) return pixels.slice();
  const out = new Float32Array(PIXELS);
  const c = (SIZE - 1) / 2;
  const t = (-rotate * Math.PI) / 180;
  const cos = Math.cos(t);
  const sin = Math.sin(t);
  const at = (x, y) => (x < 0 || y < 0 || x >= SIZE || y >= SIZE ? 0 : pixels[y * SIZE + x]);
  for (let y = 0; y < SIZE; ++y) {
    for (let x = 0; x < SIZE; ++x) {
      const u = (x - dx - c) / zoom;
      const v = (y - dy - c) / zoom;
      const sx = cos * u - sin * v + c;
      const sy = sin * u + cos * v + c;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const value =
        at(x0, y0) * (1 - fx) * (1 - fy) +
        at(x0 + 1, y0) * fx * (1 - fy) +
        at(x0, y0 + 1) * (1 - fx) * fy +
        at(x0 + 1, y0 + 1) * fx * fy;
      out[y * SIZE + x] = Math.min(1, Math.max(0, value));
    }
  }
  return out;
}

// Draws a [0, 1] gray image on a canvas, pixel by pixel (CSS scales it up).
export function drawGray(canvas, pixels) {
  canvas.width = SIZE;
  canvas.height = SIZE;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(SIZE, SIZE);
  for (let i = 0; i < PIXELS; ++i) {
    const g = Math.round(Math.min(1, Math.max(0, pixels[i])) * 255);
    img.data[4 * i] = g;
    img.data[4 * i + 1] = g;
    img.data[4 * i + 2] = g;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}
