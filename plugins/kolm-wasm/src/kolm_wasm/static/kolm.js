// The bundle's page: load the GGUF parts with wllama (cached in OPFS), run prompts, verify in the tab.
import { loadOptions, newWllama } from './runtime.js';
import { fileSource, renderChecks, urlSource, verifyBundle } from './verify.js';

const $ = (id) => document.getElementById(id);
const kolm = { record: null, wllama: null, loadSeconds: null, lastRun: null, verification: null };
window.kolm = kolm;

async function loadModel(record) {
  const wllama = newWllama();
  const first = new URL(record.payload[0].path, location.href).href;  // later parts: -0000i-of-0000N
  const start = performance.now();
  await wllama.loadModelFromUrl(first, loadOptions(({ loaded, total }) => {
    $('progress').value = total ? loaded / total : 0;
    $('status').textContent = `downloading weights ${(loaded / 2 ** 20).toFixed(0)} / ${(total / 2 ** 20).toFixed(0)} MiB`;
  }));
  kolm.loadSeconds = (performance.now() - start) / 1000;
  $('progress').value = 1;
  $('status').textContent = `ready: loaded in ${kolm.loadSeconds.toFixed(1)} s, ` +
    `${wllama.getNumThreads()} thread(s)${crossOriginIsolated ? '' : ' (not cross-origin isolated: one thread)'}`;
  return wllama;
}

// The settings under the prompt: greedy by default (the same answer each time), with a repeat
// penalty that keeps a small model out of loops.
function sampling() {
  const temperature = Number($('temperature').value);
  return { temperature, repeat_penalty: Number($('repeat-penalty').value), ...(temperature > 0 ? {} : { top_k: 1 }) };
}

async function run(prompt, maxTokens = Number($('max-tokens').value)) {
  const out = $('output');
  out.textContent = '';
  $('run').disabled = true;
  let tokens = 0, first = null, timings = null;
  const start = performance.now();
  // The user's turn in the model's own chat template (it stops at the end of the model's turn); a
  // model without one (a base model), or "raw completion", continues the text as it is.
  const options = { stream: true, max_tokens: maxTokens, ...sampling() };
  const mode = kolm.wllama.getChatTemplate() && !$('raw').checked ? 'chat' : 'completion';
  const stream = mode === 'chat'
    ? await kolm.wllama.createChatCompletion({ messages: [{ role: 'user', content: prompt }], ...options })
    : await kolm.wllama.createCompletion({ prompt, ...options });
  for await (const chunk of stream) {
    const piece = chunk.choices?.[0]?.delta?.content ?? chunk.choices?.[0]?.text ?? '';
    if (piece) { tokens += 1; first ??= performance.now(); out.textContent += piece; }
    if (chunk.timings) timings = chunk.timings;
  }
  const seconds = (performance.now() - (first ?? start)) / 1000;
  const rate = timings?.predicted_per_second ?? (tokens > 1 ? (tokens - 1) / seconds : 0);
  $('speed').textContent = `${rate.toFixed(1)} tokens/s (${timings?.predicted_n ?? tokens} tokens)`;
  $('run').disabled = false;
  kolm.lastRun = { text: out.textContent, tokensPerSecond: rate, tokens: timings?.predicted_n ?? tokens, mode };
  return kolm.lastRun;
}

async function verify(source) {
  $('verify').disabled = true;
  $('verify-status').textContent = 'verifying…';
  const params = new URLSearchParams(location.search);
  const options = { minK: Number(params.get('min_k') ?? 0.85), maxDrop: Number(params.get('max_drop') ?? 5),
    kTolerance: params.has('k_tolerance') ? Number(params.get('k_tolerance')) : null };
  try {
    const result = await verifyBundle(kolm.wllama, source, options, (text) => { $('verify-status').textContent = text; });
    renderChecks($('checks'), result.checks);
    $('verify-status').textContent = result.passed ? 'all checks passed' : 'FAILED';
    kolm.verification = result;
  } catch (err) {
    $('verify-status').textContent = `verify failed to run: ${err.message}`;
    kolm.verification = { passed: false, checks: [], error: String(err) };
  }
  $('verify').disabled = false;
  return kolm.verification;
}

async function main() {
  kolm.record = await (await fetch('kolm-export.json', { cache: 'no-store' })).json();
  const m = kolm.record.manifest;
  $('title').textContent = `${m.base} (${kolm.record.tier}) in your browser`;
  $('facts').textContent = `${kolm.record.payload.length} part(s), ` +
    `${(kolm.record.payload.reduce((s, p) => s + p.size, 0) / 2 ** 20).toFixed(0)} MiB, ` +
    `K ${m.k_score === null || m.k_score === undefined ? 'not measured' : m.k_score.toFixed(3)} on ${m.eval_pack.items} eval items`;
  kolm.wllama = await loadModel(kolm.record);
  $('run').disabled = false;
  $('verify').disabled = false;
  $('run').onclick = () => run($('prompt').value);
  $('verify').onclick = () => {
    const file = $('artifact').files[0];
    if (!file) { $('verify-status').textContent = 'choose the source .kolm first'; return; }
    verify(fileSource(file));
  };
  const served = await fetch('__kolm__/serve.json', { cache: 'no-store' }).then((r) => (r.ok ? r.json() : {}), () => ({}));
  if (served.verify) await verify(await urlSource(new URL(served.verify, location.href).href));
}

kolm.run = run;
kolm.verify = verify;
kolm.ready = main().catch((err) => { $('status').textContent = `error: ${err.message}`; throw err; });
