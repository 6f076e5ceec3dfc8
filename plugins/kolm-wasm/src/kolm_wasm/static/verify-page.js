// The reviewer's page of `kolm ui` (/verify/): an export folder and its source .kolm, chosen from
// disk, checked in this tab by verify.js with wllama. Nothing leaves the browser.
import { loadOptions, newWllama } from './runtime.js';
import { fileSource, renderChecks, verifyExport } from './verify.js';

const $ = (id) => document.getElementById(id);
const page = { result: null };
window.kolmVerify = page;

const status = (text) => { $('status').textContent = text; };

async function readExport(files) {
  const byPath = new Map([...files].map((f) => [f.webkitRelativePath.split('/').slice(1).join('/') || f.name, f]));
  const recordFile = byPath.get('kolm-export.json');
  if (!recordFile) throw new Error('no kolm-export.json in that folder: choose the folder kolm export wrote');
  const record = JSON.parse(await recordFile.text());
  const missing = record.payload.filter((p) => !byPath.has(p.path)).map((p) => p.path);
  if (missing.length) throw new Error(`the folder lacks payload file(s) ${missing.join(', ')}`);
  if (!record.payload.every((p) => p.path.endsWith('.gguf'))) {
    throw new Error(`this ${record.backend} export has no GGUF payload; check it with kolm verify in a terminal`);
  }
  return { record, blobs: record.payload.map((p) => byPath.get(p.path)) };
}

async function verify() {
  $('verify').disabled = true;
  $('checks').hidden = true;
  $('verdict').textContent = '';
  $('verdict').className = '';
  let wllama = null;
  try {
    const exported = await readExport($('export').files);
    status(`loading ${exported.record.payload.map((p) => p.path).join(', ')} into wllama`);
    $('progress').hidden = false;
    wllama = newWllama();
    await wllama.loadModel(exported.blobs, loadOptions(({ loaded, total }) => {
      $('progress').value = total ? loaded / total : 0;
    }));
    const options = { minK: Number($('min-k').value), maxDrop: Number($('max-drop').value) };
    page.result = await verifyExport(wllama, exported, fileSource($('artifact').files[0]), options, status);
    renderChecks($('checks'), page.result.checks);
    const passed = page.result.checks.filter((c) => c.passed).length;
    $('verdict').textContent = page.result.passed ? `All ${passed} checks passed`
      : `FAILED: ${page.result.checks.length - passed} of ${page.result.checks.length} checks failed`;
    $('verdict').className = page.result.passed ? 'passed' : 'failed';
    status(`K ${page.result.k.k.toFixed(3)} on ${page.result.k.items.length} items, measured in this tab`);
  } catch (err) {
    page.result = { passed: false, checks: [], error: err.message };
    $('verdict').textContent = `Could not verify: ${err.message}`;
    $('verdict').className = 'failed';
    status('');
  } finally {
    $('progress').hidden = true;
    if (wllama) await wllama.exit().catch(() => {});
    $('verify').disabled = false;
    page.done = true;
  }
}

const ready = () => { $('verify').disabled = !($('export').files.length && $('artifact').files.length); };
$('export').addEventListener('change', ready);
$('artifact').addEventListener('change', ready);
$('verify').onclick = () => { page.done = false; verify(); };
