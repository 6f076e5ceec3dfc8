// wllama as both pages start it: the vendored .wasm beside this module, llama.cpp's log quiet, and
// the load options (context, threads, the GGUF's own chat template) they share.
import { Wllama } from './wllama/index.js';

// Every logical core the browser reports (?threads=N overrides); one without cross-origin isolation,
// where the single-threaded build runs.
export function threads() {
  const asked = Number(new URLSearchParams(location.search).get('threads'));
  return asked > 0 ? asked : crossOriginIsolated ? Math.max(1, navigator.hardwareConcurrency || 1) : 1;
}

export function newWllama() {
  return new Wllama({ default: new URL('wllama/wllama.wasm', location.href).href },
    { suppressNativeLog: true, logger: { debug() {}, log() {}, warn: console.warn, error: console.error } });
}

// jinja: the GGUF's template as written (its default system turn too), as llama-cpp-python renders it.
export function loadOptions(progressCallback) {
  return { n_ctx: 1024, n_gpu_layers: 0, n_threads: threads(), jinja: true, progressCallback };
}
