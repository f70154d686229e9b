// fashion_cnn_v1 (makeModel), or a graph model such as fashion_resnet
// (makeGraphModel), ported to TensorFlow.js (NHWC) from the igscope model
// file, and the same Integrated Gradients as igscope's: black baseline, n
// Gauss-Legendre nodes on [0, 1], all path points as one batch through
// tf.grad of the sum of the target logit over the batch.

// Tensors of a .safetensors file: {name: {shape, data: Float32Array}} and
// the header's __metadata__.
export function parseSafetensors(buffer) {
  const view = new DataView(buffer);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLength)));
  const base = 8 + headerLength;
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    // Batch norm's I64 step counter is not needed for evaluation.
    if (t.dtype === 'I64' && name.endsWith('.num_batches_tracked')) continue;
    if (t.dtype !== 'F32') throw new Error(`${name}: dtype ${t.dtype}, expected F32`);
    const [begin, end] = t.data_offsets;
    // slice() copies, so the Float32Array is aligned whatever the offset.
    tensors[name] = { shape: t.shape, data: new Float32Array(buffer.slice(base + begin, base + end)) };
  }
  return { tensors, metadata: header.__metadata__ || {} };
}

// Gauss-Legendre nodes and weights on [0, 1]: the roots of P_n by Newton's
// iteration from Chebyshev-like starting points, in double precision.
export function gaussLegendre01(n) {
  const alphas = new Float64Array(n);
  const weights = new Float64Array(n);
  for (let i = 0; i < n; ++i) {
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; ++iter) {
      // P_n(x) and its derivative by the three-term recurrence.
      let p0 = 1;
      let p1 = x;
      for (let k = 2; k <= n; ++k) {
        const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      dp = (n * (x * p1 - p0)) / (x * x - 1);
      const dx = p1 / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-16) break;
    }
    // Recompute the derivative at the converged root for the weight.
    let p0 = 1;
    let p1 = x;
    for (let k = 2; k <= n; ++k) {
      const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
      p0 = p1;
      p1 = p2;
    }
    dp = (n * (x * p1 - p0)) / (x * x - 1);
    // Map [-1, 1] to [0, 1]; ascending alphas.
    alphas[n - 1 - i] = (1 + x) / 2;
    weights[n - 1 - i] = 1 / ((1 - x * x) * dp * dp);
  }
  return { alphas, weights };
}

// 2x2 max-pool, stride 2, whose gradient goes to one chosen maximum of
// each window: the first in row-major order (igscope's and PyTorch's
// convention) or the last. The forward pass is tf.maxPool; the gradient
// avoids the MaxPoolGrad kernel (an argMax over each window, a one-hot
// mask). Ties matter here: on the black background, conv1's output is its
// bias everywhere, so after the ReLU a window holds four equal positive
// values all along the path, and the backends disagree on which one gets
// the gradient.
function maxPool2x2(tf, x, ties) {
  const pool = tf.customGrad((input, save) => {
    const y = tf.maxPool(input, 2, 2, 'valid');
    save([input]);
    const gradFunc = (dy, [saved]) => {
      const [b, h, w, c] = saved.shape;
      // [b, h/2, w/2, c, 4]: each window's values in row-major order.
      const windows = tf.reshape(
        tf.transpose(tf.reshape(saved, [b, h / 2, 2, w / 2, 2, c]), [0, 1, 3, 5, 2, 4]),
        [b, h / 2, w / 2, c, 4],
      );
      const pick = ties === 'last' ? tf.sub(tf.scalar(3, 'int32'), tf.argMax(tf.reverse(windows, -1), -1)) : tf.argMax(windows, -1);
      const grads = tf.mul(tf.cast(tf.oneHot(pick, 4), 'float32'), tf.expandDims(dy, -1));
      return tf.reshape(
        tf.transpose(tf.reshape(grads, [b, h / 2, w / 2, c, 2, 2]), [0, 1, 4, 2, 5, 3]),
        [b, h, w, c],
      );
    };
    return { value: y, gradFunc };
  });
  return pool(x);
}

// The model's parameters as TF.js tensors on the current backend, in TF.js's
// layouts: conv kernels OIHW -> HWIO, dense kernels [out, in] -> [in, out].
// pool: 'native' (tf.maxPool and its MaxPoolGrad kernel), 'firstmax' or
// 'lastmax' (maxPool2x2 with that tie rule).
export function makeModel(tf, tensors, { pool = 'native' } = {}) {
  const t = (name) => {
    const v = tensors[name];
    if (!v) throw new Error(`model file has no tensor ${name}`);
    return tf.tensor(v.data, v.shape, 'float32');
  };
  const params = tf.tidy(() => ({
    c1: tf.transpose(t('0.weight'), [2, 3, 1, 0]),
    b1: t('0.bias'),
    c2: tf.transpose(t('3.weight'), [2, 3, 1, 0]),
    b2: t('3.bias'),
    c3: tf.transpose(t('6.weight'), [2, 3, 1, 0]),
    b3: t('6.bias'),
    d1: tf.transpose(t('10.weight'), [1, 0]),
    e1: t('10.bias'),
    d2: tf.transpose(t('13.weight'), [1, 0]),
    e2: t('13.bias'),
  }));
  for (const v of Object.values(params)) tf.keep(v);
  const p = params;
  const maxPool =
    pool === 'native' ? (x) => tf.maxPool(x, 2, 2, 'valid') : (x) => maxPool2x2(tf, x, pool === 'lastmax' ? 'last' : 'first');
  // x: [batch, 28, 28, 1] -> logits [batch, 10]. Dropout is the identity at
  // inference. Before flattening, NHWC -> NCHW, so the 6272 features are in
  // PyTorch's C, H, W order, which the first dense layer's weights expect.
  const forward = (x) => {
    let h = tf.relu(tf.add(tf.conv2d(x, p.c1, 1, 'same'), p.b1));
    h = maxPool(h);
    h = tf.relu(tf.add(tf.conv2d(h, p.c2, 1, 'same'), p.b2));
    h = maxPool(h);
    h = tf.relu(tf.add(tf.conv2d(h, p.c3, 1, 'same'), p.b3));
    h = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [-1, 6272]);
    h = tf.relu(tf.add(tf.matMul(h, p.d1), p.e1));
    return tf.add(tf.matMul(h, p.d2), p.e2);
  };
  const dispose = () => {
    for (const v of Object.values(params)) v.dispose();
  };
  return { forward, dispose };
}

// A graph-form model (architecture "nodes") as TF.js ops, node by node in
// the file's order (topological): conv2d (explicit symmetric padding, no
// groups or dilation), batchnorm (evaluation: the running statistics), relu,
// add, global_avgpool, flatten (NHWC -> C, H, W order) and dense; the node
// kinds of fashion_resnet. Any other kind is an error naming it.
export function makeGraphModel(tf, tensors, architecture) {
  const t = (name) => {
    const v = tensors[name];
    if (!v) throw new Error(`model file has no tensor ${name}`);
    return tf.tensor(v.data, v.shape, 'float32');
  };
  const pair = (v, d) => (v === undefined ? [d, d] : Array.isArray(v) ? v : [v, v]);
  const params = [];
  const keep = (x) => {
    tf.keep(x);
    params.push(x);
    return x;
  };
  const ops = tf.tidy(() =>
    architecture.nodes.map((n) => {
      const id = n.id;
      switch (n.type) {
        case 'conv2d': {
          if ((n.groups ?? 1) !== 1 || pair(n.dilation, 1).some((d) => d !== 1)) throw new Error(`${id}: grouped or dilated conv2d is not ported`);
          const w = keep(tf.transpose(t(`${id}.weight`), [2, 3, 1, 0]));
          const b = keep(t(`${id}.bias`));
          const [ph, pw] = pair(n.padding, 0);
          const stride = pair(n.stride, 1);
          return (x) => tf.add(tf.conv2d(x, w, stride, [[0, 0], [ph, ph], [pw, pw], [0, 0]]), b);
        }
        case 'batchnorm': {
          const [mean, variance, scale, offset] = ['running_mean', 'running_var', 'weight', 'bias'].map((k) => keep(t(`${id}.${k}`)));
          const eps = n.eps ?? 1e-5;
          return (x) => tf.batchNorm(x, mean, variance, offset, scale, eps);
        }
        case 'relu':
          return (x) => tf.relu(x);
        case 'add':
          return (...xs) => xs.slice(1).reduce((a, b) => tf.add(a, b), xs[0]);
        case 'global_avgpool':
          return (x) => tf.mean(x, [1, 2], true);
        case 'flatten':
          return (x) => tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [x.shape[0], -1]);
        case 'dense': {
          const w = keep(tf.transpose(t(`${id}.weight`), [1, 0]));
          const b = keep(t(`${id}.bias`));
          return (x) => tf.add(tf.matMul(x, w), b);
        }
        default:
          throw new Error(`${id}: the TF.js port has no '${n.type}' node`);
      }
    }),
  );
  const forward = (x) => {
    const values = { input: x };
    architecture.nodes.forEach((n, i) => {
      values[n.id] = ops[i](...n.inputs.map((k) => values[k]));
    });
    return values[architecture.output];
  };
  const dispose = () => params.forEach((v) => v.dispose());
  return { forward, dispose };
}

// Integrated Gradients of logit `target` for one 28x28 image (Float32Array,
// values in [0, 1]) against the black baseline. Returns the attributions
// (Float32Array, 784, row-major) and the model outputs at the input and the
// baseline, read back to JavaScript (so the time includes all the work).
export function integratedGradients(tf, model, pixels, target, nodes) {
  const n = nodes.alphas.length;
  const [attr, ends] = tf.tidy(() => {
    const x = tf.tensor4d(pixels, [1, 28, 28, 1]);
    const baseline = tf.zerosLike(x);
    const outputs = model.forward(tf.concat([x, baseline], 0));
    const diff = tf.sub(x, baseline);
    const alphas = tf.tensor4d(Float32Array.from(nodes.alphas), [n, 1, 1, 1]);
    const weights = tf.tensor4d(Float32Array.from(nodes.weights), [n, 1, 1, 1]);
    const path = tf.add(baseline, tf.mul(alphas, diff));
    const objective = (p) => tf.sum(tf.slice(model.forward(p), [0, target], [-1, 1]));
    const grads = tf.grad(objective)(path);
    const avg = tf.sum(tf.mul(grads, weights), 0, true);
    return [tf.reshape(tf.mul(avg, diff), [784]), tf.slice(outputs, [0, target], [2, 1])];
  });
  const attributions = attr.dataSync();
  const f = ends.dataSync();
  attr.dispose();
  ends.dispose();
  return { attributions: Float32Array.from(attributions), fInput: f[0], fBaseline: f[1] };
}
