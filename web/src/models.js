// The models the page offers (files in the public models/ folder). The first
// one that loads is the default.
export const MODELS = [
  { file: 'fashion_cnn_smelu.safetensors', label: 'Fashion CNN, SmeLU (smooth)' },
  { file: 'fashion_cnn_v1.safetensors', label: 'Fashion CNN, ReLU' },
  { file: 'fashion_resnet.safetensors', label: 'Fashion ResNet (a graph)' },
];

// The bytes of the model file at `url`; rejects when the server does not
// have it.
export async function fetchModel(url) {
  const response = await fetch(url);
  const type = response.headers.get('content-type') || '';
  const file = String(url).split('/').pop();
  if (!response.ok || type.includes('text/html')) throw new Error(`the model file ${file} is not on the server (HTTP ${response.status})`);
  return response.arrayBuffer();
}

// The data sample at `url` (as written by `igscope sample`):
// {classes, images: [{index, label, pixels: Float32Array}]}.
export async function fetchSample(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load ${url} (HTTP ${response.status})`);
  const json = await response.json();
  return {
    classes: json.classes,
    images: json.images.map((im) => ({ index: im.index, label: im.label, pixels: Float32Array.from(im.pixels, (v) => v / 255) })),
  };
}

export function stack(images) {
  const out = new Float32Array(images.length * 784);
  images.forEach((im, i) => out.set(im.pixels, i * 784));
  return out;
}
