// The picker: inputs in, the server's forecast out. Every number and command comes from kolm's
// JSON API (the code behind `kolm pick --json` and `kolm export --preview --json`); this file only
// lays them out.
const $ = (id) => document.getElementById(id);
const state = { options: null, preview: null, grid: null, gridModel: null, seq: 0 };
window.kolmUi = state;

async function api(name, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null));
  const response = await fetch(`/api/${name}?${query}`);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error ?? `HTTP ${response.status}`);
  return data;
}

const bytes = (n) => {
  for (const unit of ['B', 'KB', 'MB', 'GB', 'TB']) {
    if (Math.abs(n) < 1000 || unit === 'TB') return unit === 'B' ? `${n} B` : `${n.toFixed(n < 10 ? 2 : 1)} ${unit}`;
    n /= 1000;
  }
};
const rate = (v) => (v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en'));
const speed = (t) => (t.method === 'ceiling' ? `≤ ${rate(t.high)}` : `${rate(t.low)}–${rate(t.high)}`);
const text = (el, value) => { el.textContent = value; return el; };

function selection() {
  return { model: $('model').value.trim(), device: $('device').value, tier: document.querySelector('input[name=tier]:checked')?.value,
    memory: $('memory').value, login: $('login').value.trim() };
}

function fillOptions(options) {
  text($('version'), `v${options.version}`);
  $('bases').replaceChildren(...options.bases.map((name) => Object.assign(document.createElement('option'), { value: name })));
  $('tiers').replaceChildren(...options.tiers.map((tier) => {
    const label = document.createElement('label');
    const input = Object.assign(document.createElement('input'), { type: 'radio', name: 'tier', value: tier, checked: tier === 'int4' });
    label.append(input, tier);
    return label;
  }));
  fillDevices(options.devices);
  for (const page of options.pages) $('nav').append(Object.assign(document.createElement('a'), { href: `/${page.route}/`, textContent: page.title }));
}

function fillDevices(devices) {
  const keep = $('device').value || 'raspberry-pi-5';
  const groups = new Map();
  for (const d of devices) {
    const group = d.whose || d.kind;
    if (!groups.has(group)) groups.set(group, Object.assign(document.createElement('optgroup'), { label: group }));
    groups.get(group).append(Object.assign(document.createElement('option'), {
      value: d.slug, selected: d.slug === keep,
      textContent: `${d.name} — ${d.memory_gb === null ? '' : `${d.memory_gb} GB, `}${d.backends.join(' > ')}` }));
  }
  $('device').replaceChildren(...groups.values());
}

function fillMemory() {
  const device = state.options.devices.find((d) => d.slug === $('device').value);
  const sizes = [...new Set([device.memory_gb, ...device.memory_options_gb])].filter((gb) => gb !== null).sort((a, b) => a - b);
  const keep = $('memory').value;
  const value = (gb) => (gb === device.memory_gb ? '' : String(gb));  // '' = the row's own figure
  $('memory').replaceChildren(...sizes.map((gb) => Object.assign(document.createElement('option'), {
    value: value(gb), textContent: `${gb} GB${gb === device.memory_gb ? ' (the row\'s)' : ''}`, selected: value(gb) === keep })));
  if (!sizes.length) $('memory').replaceChildren(Object.assign(document.createElement('option'), { value: '', textContent: 'measured' }));
  $('memory').value = sizes.some((gb) => value(gb) === keep) ? keep : '';
  $('memory').disabled = sizes.length < 2;
}

function cell(id, value, how, extra) {
  const el = $(id);
  text(el.querySelector('.value'), value);
  text(el.querySelector('.how'), how);
  if (extra !== undefined) text(el.querySelector('.sources'), extra);
}

function showPreview(p) {
  const s = selection();
  text($('headline'), `Forecast — ${p.model} on ${p.device}, ${p.tier} (${p.tok_s.method === 'measured' ? 'tok/s measured by kolm bench' : 'not measured'})`);
  cell('cell-size', bytes(p.size_bytes), `${p.size_bytes.toLocaleString('en')} B — ${p.size_method}`);
  cell('cell-speed', `${speed(p.tok_s)} tok/s`, p.tok_s.basis, `sources: ${p.forecast_sources.join(' · ')}`);
  cell('cell-k', `${p.k_loss_points.toFixed(1)} points`, p.k_loss_method);
  cell('cell-fit', p.fit.verdict.toUpperCase(), p.fit.arithmetic);
  $('cell-fit').className = `cell fit-${p.fit.verdict}`;
  cell('cell-backend', p.backend + (p.backend_installed ? '' : ' (not installed)'),
    p.recipe ? `${p.recipe}${p.spelling && p.spelling !== p.recipe ? ` (${p.spelling})` : ''}` : 'no recipe: the backend is not installed');
  $('notes').replaceChildren(...[...(p.refusal ? [`${p.backend} cannot export: ${p.refusal}`] : []), ...p.notes]
    .map((note) => text(document.createElement('li'), note)));
  const cli = `kolm export ${s.model} --target ${s.device} --quant ${s.tier}${s.memory ? ` --memory ${s.memory}` : ''}` +
    `${s.login ? ` --login ${s.login}` : ''} --preview`;
  text($('preview-cli'), cli);
  $('steps').replaceChildren(...p.steps.map((step) => {
    const li = document.createElement('li');
    li.dataset.step = step.title;
    const head = document.createElement('div');
    head.className = 'head';
    const title = text(document.createElement('span'), `${step.number}. ${step.title}`);
    title.className = 'title';
    const where = text(document.createElement('span'), `on ${step.where}`);
    where.className = 'muted';
    head.append(title, where);
    li.append(head);
    if (step.command) {
      const pre = text(document.createElement('pre'), step.command);
      pre.className = 'cmd';
      const copy = text(document.createElement('button'), 'Copy');
      copy.type = 'button';
      copy.onclick = async () => {
        try { await navigator.clipboard.writeText(step.command); text(copy, 'Copied'); } catch { text(copy, 'select and copy'); }
        setTimeout(() => text(copy, 'Copy'), 1500);
      };
      head.append(copy);
      li.append(pre);
    }
    if (step.note) li.append(Object.assign(text(document.createElement('div'), step.note), { className: 'muted' }));
    return li;
  }));
}

function showGrid(rows, s) {
  const tiers = state.options.tiers;
  const byDevice = new Map();
  for (const r of rows) {
    if (!byDevice.has(r.device)) byDevice.set(r.device, {});
    byDevice.get(r.device)[r.tier] = r;
  }
  const head = document.createElement('tr');
  head.append(text(document.createElement('th'), 'device'), text(document.createElement('th'), 'backend'),
    ...tiers.map((t) => text(document.createElement('th'), t)));
  const slugOf = new Map(state.options.devices.map((d) => [d.name, d.slug]));
  const body = [...byDevice].map(([device, cells]) => {
    const tr = document.createElement('tr');
    const first = Object.values(cells)[0];
    tr.append(text(document.createElement('th'), device), text(document.createElement('td'), first.backend));
    tr.lastChild.className = 'none';
    for (const tier of tiers) {
      const td = document.createElement('td');
      const r = cells[tier];
      if (!r) { td.className = 'none'; text(td, 'not made'); tr.append(td); continue; }
      td.className = `${r.fit.verdict}${r.refusal ? ' refused' : ''}`;
      td.dataset.device = slugOf.get(device);
      td.dataset.tier = tier;
      td.title = `${r.fit.verdict.toUpperCase()}: ${r.fit.arithmetic}${r.refusal ? `\n${r.backend} cannot export: ${r.refusal}` : ''}`;
      const v = text(document.createElement('span'), bytes(r.size_bytes));
      v.className = 'v';
      td.append(v, ` ${r.fit.verdict.toUpperCase()} · ${speed(r.tok_s)}`);
      if (td.dataset.device === s.device && tier === s.tier) td.classList.add('selected');
      td.onclick = () => {
        $('device').value = td.dataset.device;
        document.querySelector(`input[name=tier][value=${tier}]`).checked = true;
        fillMemory();
        update();
      };
      tr.append(td);
    }
    return tr;
  });
  $('grid').replaceChildren(head, ...body);
}

async function update() {
  const s = selection();
  const seq = ++state.seq;
  history.replaceState(null, '', `?${new URLSearchParams(Object.entries(s).filter(([, v]) => v))}`);
  document.body.dataset.busy = 'true';
  try {
    const preview = await api('preview', s);
    const grid = state.gridModel === s.model ? state.grid : await api('pick', { model: s.model });
    if (seq !== state.seq) return;  // a newer selection is on its way
    if (grid.some((r) => !state.options.devices.some((d) => d.name === r.device))) {
      state.options = await api('options');  // a device profiled since (this machine)
      fillDevices(state.options.devices);
    }
    text($('error'), '');
    state.preview = preview;
    state.grid = grid;
    state.gridModel = s.model;
    showPreview(preview);
    showGrid(grid, s);
  } catch (err) {
    if (seq === state.seq) text($('error'), err.message);
  } finally {
    if (seq === state.seq) document.body.dataset.busy = 'false';
  }
}

async function main() {
  state.options = await api('options');
  fillOptions(state.options);
  const given = new URLSearchParams(location.search);
  if (given.get('model')) $('model').value = given.get('model');
  if (given.get('device')) $('device').value = given.get('device');
  if (given.get('tier')) document.querySelector(`input[name=tier][value=${given.get('tier')}]`).checked = true;
  if (given.get('login')) $('login').value = given.get('login');
  fillMemory();
  if (given.get('memory')) $('memory').value = given.get('memory');
  $('model').addEventListener('change', update);
  $('tiers').addEventListener('change', update);
  $('device').addEventListener('change', () => { fillMemory(); update(); });
  $('memory').addEventListener('change', update);
  $('login').addEventListener('change', update);
  await update();
}

state.ready = main().catch((err) => { text($('error'), err.message); throw err; });
