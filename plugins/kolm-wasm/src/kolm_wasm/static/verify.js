// `kolm verify` in the tab: the same six checks, names and pass rules as kolm/verify.py, run
// against the bundle this page was served from and the source .kolm. Nothing leaves the browser.

const TIERS = ['fp16', 'int8', 'int4', 'int3'];
const HEX64 = /^[0-9a-f]{64}$/;
const TOP_LOGPROBS = 50;

// ---- byte sources: a File, or a URL read with Range requests (the .kolm is never fetched whole)
export function fileSource(file) {
  return { name: file.name, size: file.size,
    read: async (offset, length) => new Uint8Array(await file.slice(offset, offset + length).arrayBuffer()) };
}

export async function urlSource(url) {
  const head = await fetch(url, { method: 'HEAD', cache: 'no-store' });
  if (!head.ok) throw new Error(`${url}: HTTP ${head.status}`);
  return { name: decodeURIComponent(url.split('/').pop()), size: Number(head.headers.get('content-length')),
    read: async (offset, length) => {
      const r = await fetch(url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` }, cache: 'no-store' });
      if (r.status !== 206) throw new Error(`${url}: no byte ranges (HTTP ${r.status})`);
      return new Uint8Array(await r.arrayBuffer());
    } };
}

// ---- RS-1 is a ZIP of stored members: the central directory says where each one's bytes are
export async function readZip(source) {
  const tailLength = Math.min(source.size, 65557);
  const tail = await source.read(source.size - tailLength, tailLength);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i -= 1) if (view.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) throw new Error(`${source.name}: not a ZIP (no end of central directory)`);
  let count = view.getUint16(eocd + 10, true), cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if (cdOffset === 0xffffffff && eocd >= 20 && view.getUint32(eocd - 20, true) === 0x07064b50) {  // ZIP64
    const z = new DataView((await source.read(Number(view.getBigUint64(eocd - 12, true)), 56)).buffer);
    count = Number(z.getBigUint64(32, true)); cdSize = Number(z.getBigUint64(40, true));
    cdOffset = Number(z.getBigUint64(48, true));
  }
  const cd = await source.read(cdOffset, cdSize);
  const d = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const members = new Map();
  for (let p = 0, i = 0; i < count; i += 1) {
    if (d.getUint32(p, true) !== 0x02014b50) throw new Error(`${source.name}: corrupt central directory`);
    const method = d.getUint16(p + 10, true), nameLength = d.getUint16(p + 28, true);
    const extraLength = d.getUint16(p + 30, true), commentLength = d.getUint16(p + 32, true);
    let size = d.getUint32(p + 24, true), local = d.getUint32(p + 42, true);
    const name = new TextDecoder().decode(cd.subarray(p + 46, p + 46 + nameLength));
    for (let e = p + 46 + nameLength; e < p + 46 + nameLength + extraLength;) {  // ZIP64 extra field
      const id = d.getUint16(e, true), len = d.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        if (d.getUint32(p + 24, true) === 0xffffffff) { size = Number(d.getBigUint64(q, true)); q += 8; }
        if (d.getUint32(p + 20, true) === 0xffffffff) q += 8;
        if (d.getUint32(p + 42, true) === 0xffffffff) local = Number(d.getBigUint64(q, true));
      }
      e += 4 + len;
    }
    members.set(name, { name, method, size, local });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return {
    names: [...members.keys()],
    async read(name) {
      const m = members.get(name);
      if (!m) throw new Error(`${source.name}: no member ${name}`);
      if (m.method !== 0) throw new Error(`${source.name}: ${name} is compressed; RS-1 members are stored`);
      const h = new DataView((await source.read(m.local, 30)).buffer);
      const start = m.local + 30 + h.getUint16(26, true) + h.getUint16(28, true);
      return source.read(start, m.size);
    },
  };
}

// ---- GGUF headers: metadata strings we need and every tensor's ggml type
const GGML = { 0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 10: 'Q2_K', 11: 'Q3_K',
  12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 20: 'IQ4_NL', 23: 'IQ4_XS', 30: 'BF16' };
const SCALAR = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export function parseGguf(bytes) {
  const d = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  const need = (n) => { if (p + n > bytes.length) throw new RangeError('truncated GGUF header'); };
  const u32 = () => { need(4); p += 4; return d.getUint32(p - 4, true); };
  const u64 = () => { need(8); p += 8; return Number(d.getBigUint64(p - 8, true)); };
  const str = () => { const n = u64(); need(n); p += n; return new TextDecoder().decode(bytes.subarray(p - n, p)); };
  const skip = (type) => {
    if (type === 8) { const n = u64(); need(n); p += n; } else { need(SCALAR[type]); p += SCALAR[type]; }
  };
  if (u32() !== 0x46554747) throw new Error('not a GGUF file');
  u32();
  const nTensors = u64(), nKv = u64(), kv = {}, tensors = [];
  for (let i = 0; i < nKv; i += 1) {
    const key = str(), type = u32();
    if (type === 9) {
      const sub = u32(), n = u64();
      if (sub === 8) for (let j = 0; j < n; j += 1) skip(8); else { need(n * SCALAR[sub]); p += n * SCALAR[sub]; }
    } else if (type === 8) kv[key] = str();
    else if (type === 4) kv[key] = u32();
    else if (type === 2) { need(2); kv[key] = d.getUint16(p, true); p += 2; } else skip(type);
  }
  for (let i = 0; i < nTensors; i += 1) {
    const name = str(), dims = [];
    for (let n = u32(), j = 0; j < n; j += 1) dims.push(u64());
    const type = u32();
    u64();
    tensors.push({ name, dims, type: GGML[type] ?? `type ${type}` });
  }
  return { kv, tensors };
}

async function ggufHeader(blob) {
  for (let n = 4 * 2 ** 20; ; n *= 4) {  // grow the window until the whole header is in it
    try { return parseGguf(new Uint8Array(await blob.slice(0, n).arrayBuffer())); } catch (err) {
      if (!(err instanceof RangeError) || n >= blob.size) throw err;
    }
  }
}

// The tier whose llama.cpp rule gives these tensor types. A reduced port of kolm_gguf.size.tier_of
// (the Python is the reference): the weights every layer quantizes at the tier's base type (q, k,
// gate, up) must all carry it, or its fallback for rows not a multiple of 256; every other matrix
// must carry a type that tier's rule can pick (fallbacks as quant_plan._FALLBACK); vectors stay F32.
const RULES = {
  fp16: { base: ['F16'], allowed: ['F16'] },
  int8: { base: ['Q8_0'], allowed: ['Q8_0'] },
  int4: { base: ['Q4_K', 'Q5_0'], allowed: ['Q4_K', 'Q5_0', 'Q5_K', 'Q5_1', 'Q6_K', 'Q8_0'] },
  int3: { base: ['Q3_K', 'Q4_0'], allowed: ['Q3_K', 'Q4_0', 'Q4_K', 'Q5_0', 'Q5_K', 'Q5_1', 'Q6_K', 'Q8_0'] },
};
const BASE = /\.(attn_q|attn_k|ffn_gate|ffn_up)\.weight$/;

export function tierOf(tensors) {
  if (tensors.some((t) => t.dims.length === 1 && t.type !== 'F32')) return null;
  const matrices = tensors.filter((t) => t.dims.length > 1), base = matrices.filter((t) => BASE.test(t.name));
  return TIERS.find((tier) => base.length && base.every((t) => RULES[tier].base.includes(t.type))
    && matrices.every((t) => RULES[tier].allowed.includes(t.type))) ?? null;
}

export function typeMix(tensors) {
  const counts = {};
  for (const t of tensors) counts[t.type] = (counts[t.type] ?? 0) + 1;
  return Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([t, n]) => `${n} ${t}`).join(', ');
}

// ---- the RS-1 manifest schema (kolm.manifest.Manifest; extra keys are refused, as pydantic does)
export function manifestProblem(m) {
  const keys = ['schema', 'base', 'arch', 'params', 'quant', 'recipe', 'k_score', 'k_score_fp16_reference',
    'refusals', 'eval_pack', 'payload', 'created_by', 'license'];
  const unit = (x) => x === null || x === undefined || (typeof x === 'number' && x >= 0 && x <= 1);
  if (typeof m !== 'object' || m === null) return 'not a JSON object';
  const extra = Object.keys(m).filter((k) => !keys.includes(k));
  if (extra.length) return `unexpected field ${extra[0]}`;
  if (m.schema !== 'RS-1') return 'schema is not RS-1';
  for (const k of ['base', 'arch', 'created_by', 'license']) if (typeof m[k] !== 'string') return `${k} is not a string`;
  if (!Number.isInteger(m.params) || m.params < 1) return 'params is not a positive integer';
  if (!TIERS.includes(m.quant)) return `quant ${m.quant} is not a tier`;
  if (m.recipe !== null && m.recipe !== undefined && typeof m.recipe !== 'string') return 'recipe is not a string';
  if (!unit(m.k_score) || !unit(m.k_score_fp16_reference)) return 'a K-score is outside [0, 1]';
  const refusals = m.refusals ?? {};
  if (typeof refusals !== 'object' || Array.isArray(refusals) || Object.values(refusals).some((r) => typeof r !== 'string'))
    return 'refusals is not {backend: reason}';
  const e = m.eval_pack;
  if (!e || typeof e.path !== 'string' || !HEX64.test(e.sha256) || !Number.isInteger(e.items) || e.items < 1
    || Object.keys(e).length !== 3) return 'eval_pack is not {path, sha256, items}';
  if (!Array.isArray(m.payload) || m.payload.some((f) => typeof f.path !== 'string' || !HEX64.test(f.sha256)
    || !Number.isInteger(f.size) || f.size < 0 || Object.keys(f).length !== 3)) return 'payload is not [{path, sha256, size}]';
  return null;
}

const canonical = (x) => JSON.stringify(x, (k, v) => (v && typeof v === 'object' && !Array.isArray(v)
  ? Object.fromEntries(Object.keys(v).sort().map((key) => [key, v[key]])) : v));

export async function sha256(buffer) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buffer));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- K, as kolm/kscore.py scores it
const SURROUNDING = ' \t\r\n.,;:!?"\'`*_()[]{}<>«»‘’‚‛“”„‟‹›「」『』';
export function normalize(text) {
  let s = text.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ');
  let a = 0, b = s.length;
  while (a < b && SURROUNDING.includes(s[a])) a += 1;
  while (b > a && SURROUNDING.includes(s[b - 1])) b -= 1;
  return s.slice(a, b);
}
const firstLine = (text) => text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/u).find((l) => l.trim()) ?? '';
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const containsWords = (text, phrase) => new RegExp(`(?<![\\p{L}\\p{N}\\p{M}_])${escape(phrase)}(?![\\p{L}\\p{N}\\p{M}_])`, 'u').test(text);
const GREEDY = { temperature: 0, top_k: 1, top_p: 1, min_p: 0, penalty_repeat: 1, repeat_penalty: 1 };

function topLogprobs(choice) {
  const lp = choice?.logprobs;
  if (!lp) return [];
  if (Array.isArray(lp.content)) return (lp.content[0]?.top_logprobs ?? []).map((t) => [t.token, t.logprob]);
  return Object.entries(lp.top_logprobs?.[0] ?? {});
}

// Sum of log p(continuation | context). wllama exposes no tokenizer or logits row, only llama.cpp's
// top log-probabilities of the next token: the continuation is walked token by token, taking the
// longest listed token it starts with; one not among the top TOP_LOGPROBS counts as -Infinity.
export async function loglikelihood(wllama, context, continuation) {
  let total = 0, done = '';
  while (done.length < continuation.length) {
    const rest = continuation.slice(done.length);
    const hit = (await nextTokenLogprobs(wllama, context + done)).filter(([tok]) => tok && rest.startsWith(tok))
      .sort((x, y) => y[0].length - x[0].length)[0];
    if (!hit) return -Infinity;
    total += hit[1];
    done += hit[0];
  }
  return total;
}

// wllama 3.13 fails ("RuntimeError: Invalid typed array length") on some long top-log-prob lists
// that hold raw byte tokens (seen on SentencePiece vocabularies): ask again for a shorter list.
async function nextTokenLogprobs(wllama, prompt) {
  for (let n = TOP_LOGPROBS; ; n = Math.floor(n / 2)) {
    try {
      const res = await wllama.createCompletion({ prompt, max_tokens: 1, logprobs: n, n_probs: n, stream: false,
        ...GREEDY });
      return topLogprobs(res.choices[0]);
    } catch (err) {
      if (n <= 1 || !String(err).includes('Invalid typed array length')) throw err;
    }
  }
}

export async function scoreItems(wllama, items, progress = () => {}) {
  const scored = [];
  for (const item of items) {
    let output, ok;
    if (item.kind === 'choice') {
      const lls = [];
      for (const c of item.choices) lls.push(await loglikelihood(wllama, item.prompt, c));
      const best = lls.reduce((bi, v, i) => (v > lls[bi] ? i : bi), 0);  // ties go to the first choice
      output = item.choices[best];
      ok = output === item.answer;
    } else {
      const res = await wllama.createCompletion({ prompt: item.prompt, max_tokens: 32, stream: false, ...GREEDY });
      output = res.choices[0].text;
      const answer = normalize(item.answer);
      ok = item.kind === 'exact' ? normalize(firstLine(output)) === answer
        : Boolean(answer) && containsWords(normalize(output), answer);
    }
    scored.push({ id: item.id, kind: item.kind, output, score: ok ? 1 : 0 });
    progress(scored.length, items.length);
  }
  return { k: scored.reduce((s, r) => s + r.score, 0) / scored.length, items: scored };
}

// ---- the six checks
async function partBlob(wllama, path) {
  const url = new URL(path, location.href).href;  // the bytes the model runs: wllama's cached copy
  const cached = await wllama.cacheManager.open(url).catch(() => null);
  return cached ?? (await fetch(url, { cache: 'no-store' })).blob();
}

// The bundle this page was served from: its record, and the parts as wllama cached them.
export async function verifyBundle(wllama, artifactSource, options = {}, status = () => {}) {
  const record = await (await fetch('kolm-export.json', { cache: 'no-store' })).json();
  status('reading the GGUF parts');
  const blobs = [];
  for (const p of record.payload) blobs.push(await partBlob(wllama, p.path));
  return verifyExport(wllama, { record, blobs }, artifactSource, options, status);
}

// An export given as its record (kolm-export.json) and its payload files (Blobs, in the record's
// order), with `wllama` already holding that payload: the six checks against the source .kolm.
export async function verifyExport(wllama, { record, blobs }, artifactSource,
  { minK = 0.85, maxDrop = 5, kTolerance = null } = {}, status = () => {}) {
  const checks = [];
  const check = (name, passed, expected, found) => checks.push({ number: checks.length + 1, name, passed, expected, found });
  status('reading the GGUF headers');
  const headers = [];
  for (const b of blobs) headers.push(await ggufHeader(b));
  const raw = headers[0].kv['kolm.manifest'];
  let embedded = null, problem = raw === undefined ? 'no manifest embedded in the payload' : null;
  if (!problem) {
    try { embedded = JSON.parse(raw); problem = manifestProblem(embedded); } catch { problem = 'not JSON'; }
    if (problem) problem = `not valid RS-1 (${problem})`;
  }
  const same = !problem && canonical(embedded) === canonical(record.manifest);
  check('manifest is valid RS-1', same, "an RS-1 manifest in the payload, equal to kolm-export.json's",
    same ? 'equal' : problem ?? 'differs from kolm-export.json');
  const manifest = problem ? record.manifest : embedded;

  const found = [];
  for (let i = 0; i < blobs.length; i += 1) {
    status(`SHA-256 of ${record.payload[i].path} (WebCrypto)`);
    found.push(await sha256(await blobs[i].arrayBuffer()));
  }
  const bad = record.payload.map((p, i) => [p, found[i]]).filter(([p, f]) => p.sha256 !== f);
  const shown = bad.length ? bad : record.payload.map((p, i) => [p, found[i]]);
  check('payload SHA-256 matches', !bad.length, shown.map(([p]) => `${p.path} ${p.sha256.slice(0, 16)}…`).join(', '),
    shown.map(([p, f]) => `${p.path} ${f.slice(0, 16)}…`).join(', '));

  status(`reading ${artifactSource.name}`);
  const zip = await readZip(artifactSource);
  const source = JSON.parse(new TextDecoder().decode(await zip.read('manifest.json')));
  const pack = await zip.read(source.eval_pack.path);
  const packSha = await sha256(pack);
  check('eval pack hash matches', packSha === manifest.eval_pack.sha256 && packSha === source.eval_pack.sha256,
    `${manifest.eval_pack.sha256.slice(0, 16)}… (export) = ${source.eval_pack.sha256.slice(0, 16)}… (artifact manifest)`,
    `${packSha.slice(0, 16)}… (${artifactSource.name}:${source.eval_pack.path})`);

  const tensors = headers.flatMap((h) => h.tensors);
  const tier = tierOf(tensors);
  check('quant tier matches the tensor types', tier === manifest.quant, `${manifest.quant} (manifest)`,
    `${tier ?? 'no tier'} (${typeMix(tensors)})`);

  const items = new TextDecoder().decode(pack).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const measured = await scoreItems(wllama, items, (done, total) => status(`measuring K with wllama: ${done}/${total}`));
  // wllama is llama.cpp, but threads, batching and the top-log-prob walk differ from the native run
  // that recorded K: by default one item may flip (?k_tolerance= sets it, 0 as kolm verify does).
  const tolerance = kTolerance ?? 1 / items.length;
  const recorded = manifest.k_score;
  check('K recomputed matches the recorded K', recorded !== null && Math.abs(measured.k - recorded) <= tolerance + 1e-9,
    `${recorded === null ? 'None' : recorded.toFixed(4)} ± ${+tolerance.toFixed(4)}${kTolerance === null ? ' (one item)' : ''}`,
    measured.k.toFixed(4));

  const reference = source.k_score_fp16_reference;
  const drop = reference === null || reference === undefined ? null : 100 * (reference - measured.k);
  check('K at or above the gate, drop within tolerance', measured.k >= minK && drop !== null && drop <= maxDrop,
    `K ≥ ${minK.toFixed(2)}, drop ≤ ${maxDrop} points vs fp16`,
    `K ${measured.k.toFixed(3)}, drop ${drop === null ? 'unknown (no fp16 reference)' : `${drop.toFixed(1)} points`}`);
  return { passed: checks.every((c) => c.passed), checks, k: measured };
}

export function renderChecks(table, checks) {
  const body = table.querySelector('tbody');
  body.replaceChildren(...checks.map((c) => {
    const row = document.createElement('tr');
    for (const [text, cls] of [[c.number], [c.name], [c.passed ? 'PASS' : 'FAIL', c.passed ? 'PASS' : 'FAIL'],
      [c.expected], [c.found]]) {
      const cell = document.createElement('td');
      cell.textContent = String(text);
      if (cls) cell.className = cls;
      row.append(cell);
    }
    return row;
  }));
  table.dataset.passed = String(checks.every((c) => c.passed));
  table.hidden = false;
}
