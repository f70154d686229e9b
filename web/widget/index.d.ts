// Type declarations for igscope-explorer: the <igscope-explorer> custom
// element and its small JavaScript API.

/** The module's result for one attribution (the fields the widget uses; the object holds more). */
export interface IgscopeResult {
  method: string;
  target: number;
  target_name: string;
  predicted: number;
  predicted_name: string;
  probabilities: number[];
  outputs: number[];
  /** F(x): the explained output at the input. */
  f_input: number | null;
  /** F(x'): the explained output at the baseline (null for methods without one). */
  f_baseline: number | null;
  attribution_sum: number;
  /** Completeness gap: sum(attributions) - (F(x) - F(x')); null for non-path methods. */
  gap: number | null;
  /** gap / |F(x) - F(x')|. */
  relative_gap: number | null;
  /** 28 rows of 28 values ([row][column] or [row][column][channel]). */
  attributions: number[][] | number[][][];
  baseline?: string;
  baseline_image?: number[][] | number[][][];
  steps?: number;
  quadrature?: string;
  evaluations: number;
  milliseconds: number;
  [key: string]: unknown;
}

/**
 * Which WebAssembly build runs: on cross-origin isolated pages the threaded one, with relaxed SIMD
 * (fused multiply-add) where the browser validates it; single-threaded SIMD elsewhere.
 */
export interface IgscopeEngineInfo {
  build: 'threaded-relaxed' | 'threaded' | 'single';
  /** The simd kernels' instruction set, e.g. "wasm simd128 + relaxed SIMD". */
  isa: string;
  /** Set when the relaxed build failed to load and the plain threaded one runs instead: why. */
  fallback?: string;
  threaded: boolean;
  threads: number;
  simd: boolean;
  crossOriginIsolated: boolean;
  backend: string;
  cores: number;
}

export interface IgscopeResultDetail {
  result: IgscopeResult;
  gap: number | null;
  relativeGap: number | null;
  fInput: number | null;
  fBaseline: number | null;
  attributionSum: number;
  predicted: number;
  target: number;
  build: 'threaded-relaxed' | 'threaded' | 'single' | null;
}

export interface IgscopeErrorDetail {
  message: string;
}

/** 784 values in [0, 1] (28x28, a light garment on black), an image URL, a Blob, or an image source. */
export type IgscopeInput = Float32Array | number[] | string | URL | Blob | ImageBitmapSource;

export type IgscopeState = 'idle' | 'loading' | 'computing' | 'done' | 'error';

/**
 * <igscope-explorer> attributes:
 * - model: URL of a .safetensors model (default: the package's fashion_cnn_smelu), or of an .onnx model (imported in the browser)
 * - input-range ("0:1" default, or "0:255"), mean, std ("R,G,B" or one value): the import options of an .onnx model
 * - image: URL of a picture (fitted into 28x28 gray), or
 * - sample: position in the test sample (default 0); samples: its URL (default: the package's data/test_sample.json)
 * - target: class index or "predicted" (default)
 * - method: ig (default), gradient, gradxinput, smoothgrad, smoothgrad_ig, blurig, guidedig
 * - baseline: a baseline spec (black, white, constant:V, uniform@SEED, gaussian:SIGMA@SEED, blur:SIGMA, maxdist, avg:N:uniform@SEED,
 *   and from training images: mean, median, train:N (expected gradients over N of them))
 * - train-samples: URL of the training images for mean, median and train:N (default: the package's
 *   data/train_sample.json, 100 images; fetched only when such a baseline is asked for)
 * - steps (default 32), quadrature (default gausslegendre)
 * - render: signed (default), magnitude, positive, overlay
 * - invert: "true" / "false" for pictures (default: inverted when the border is light)
 * - compact: just the input, the heatmap and the baseline control
 */
export declare class IgscopeExplorer extends HTMLElement {
  static readonly observedAttributes: string[];
  /** The last result, or null. */
  readonly result: IgscopeResult | null;
  readonly state: IgscopeState;
  /** The build in use, once the engine has started. */
  readonly engineInfo: IgscopeEngineInfo | null;
  /** Sets the input; resolves once it is in place (the result follows as an igscope-result event). */
  setInput(source: IgscopeInput): Promise<void>;
  /** A baseline spec string or a baseline image (784 values in [0, 1]); null goes back to the attribute. */
  setBaseline(baseline: string | Float32Array | number[] | null): void;
  addEventListener<K extends keyof IgscopeExplorerEventMap>(
    type: K,
    listener: (this: IgscopeExplorer, ev: IgscopeExplorerEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
}

export interface IgscopeExplorerEventMap extends HTMLElementEventMap {
  'igscope-result': CustomEvent<IgscopeResultDetail>;
  'igscope-error': CustomEvent<IgscopeErrorDetail>;
}

/** URL of the package's default model (fashion_cnn_smelu.safetensors). */
export declare const DEFAULT_MODEL: string;
/** URL of the package's test sample (200 Fashion-MNIST test images, 20 per class). */
export declare const DEFAULT_SAMPLES: string;

declare global {
  interface HTMLElementTagNameMap {
    'igscope-explorer': IgscopeExplorer;
  }
}
