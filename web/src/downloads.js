// Downloads: the heatmap as PNG and the module's result as JSON.
function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export function downloadCanvas(canvas, name) {
  canvas.toBlob((blob) => {
    if (blob) save(blob, name);
  }, 'image/png');
}

export function downloadJson(text, name) {
  save(new Blob([text], { type: 'application/json' }), name);
}
