// Browser end-to-end tests of the flowlab web app in Debian's headless Chromium.
// usage: node tests/e2e/e2e.js http://127.0.0.1:PORT/      (scripts/test serves dist/ and runs this)
//
// Each test starts its own Chromium (fresh profile), loads the release build, waits for the app's
// test hook `window.flowlab.status()` and checks status + a screenshot (kept in artifacts/).
// Prints "N passed, M failed"; exits non-zero on any failure.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');

const BASE = process.argv[2] || 'http://127.0.0.1:8080/';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, 'artifacts');
const VIEWPORT = { width: 1100, height: 700 };
const LOAD_TIMEOUT_MS = 120_000; // wasm compile can be slow on 2 busy cores
// = REFERENCE_INPUTS_FINGERPRINT in tests/numerics/engine_train.rs (the native build's value).
const REFERENCE_INPUTS_FINGERPRINT = '15f1df04fc8c33fd';

// Flags from TOOLCHAIN.md. WebGPU with a screenshot that is not blank needs SwiftShader Vulkan
// for ANGLE and no --disable-gpu; the WebGL2 fallback is plain --disable-gpu without WebGPU.
const BASE_FLAGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=vulkan',
  '--use-vulkan=swiftshader', '--enable-unsafe-swiftshader'];
const WEBGL2_FLAGS = ['--disable-gpu'];

// ---------------------------------------------------------------------------------------------
// A tiny PNG decoder (8-bit RGB/RGBA, non-interlaced — what Chromium writes), Node's zlib only.

function decodePng(buffer) {
  if (buffer.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let offset = 8, width = 0, height = 0, channels = 0;
  const idat = [];
  while (offset < buffer.length) {
    const length = buffer.readUInt32BE(offset);
    const type = buffer.toString('ascii', offset + 4, offset + 8);
    const data = buffer.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [bitDepth, colorType, , , interlace] = data.subarray(8, 13);
      channels = { 2: 3, 6: 4 }[colorType];
      if (bitDepth !== 8 || !channels || interlace !== 0) {
        throw new Error(`unsupported PNG: depth ${bitDepth}, colour type ${colorType}, interlace ${interlace}`);
      }
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    offset += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = (line[x] + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

// How much of a screenshot is "drawn": the share of pixels unlike the most common colour, and the
// share of bright heat-map colours (magma's orange/yellow band where the target's density is high).
function analyse(png) {
  const { width, height, channels, pixels } = decodePng(png);
  const counts = new Map();
  let bright = 0;
  for (let i = 0; i < width * height; i++) {
    const r = pixels[i * channels], g = pixels[i * channels + 1], b = pixels[i * channels + 2];
    const key = (r << 16) | (g << 8) | b;
    counts.set(key, (counts.get(key) || 0) + 1);
    if (r > 200 && g > 110 && b < 200) bright++;
  }
  const modeCount = Math.max(...counts.values());
  const total = width * height;
  return { width, height, colors: counts.size, drawn: 1 - modeCount / total, bright: bright / total };
}

function expectRendered(shot, name) {
  const a = analyse(shot);
  const summary = `${name}: ${a.width}x${a.height}, ${a.colors} colours, ` +
    `${(100 * a.drawn).toFixed(1)}% drawn, ${(100 * a.bright).toFixed(2)}% bright`;
  console.log(`    ${summary}`);
  // Loose expectations: a blank (white) or "Loading…" page fails all three.
  check(a.colors > 200, `${summary}: too few colours, looks blank`);
  check(a.drawn > 0.3, `${summary}: mostly one colour, looks blank`);
  check(a.bright > 0.002, `${summary}: no bright heat-map pixels, the plot is missing`);
}

// ---------------------------------------------------------------------------------------------
// Test plumbing.

class CheckFailed extends Error {}
function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

async function withPage(flags, fn, { pageErrorsExpected = false } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flowlab-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: VIEWPORT, args: [...BASE_FLAGS, ...flags],
  });
  const page = context.pages()[0] || await context.newPage();
  const logs = [];
  const pageErrors = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  try {
    await fn(page);
    check(pageErrorsExpected || pageErrors.length === 0, `uncaught page errors: ${pageErrors.join(' | ')}`);
  } catch (error) {
    const tail = logs.filter((l) => !l.includes('DevTools')).slice(-15);
    if (tail.length) console.log(`    console (last ${tail.length}):\n      ${tail.join('\n      ')}`);
    throw error;
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function status(page) {
  return page.evaluate(() => {
    const s = window.flowlab.status();
    return typeof s === 'string' ? JSON.parse(s) : s;
  });
}

// Loads `url` and waits until the app has drawn a frame and knows whether WebGPU exists.
async function loadApp(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => {
    try {
      const s = JSON.parse(window.flowlab.status());
      return s.error && s.loading || (s.frames > 0 && s.webgpu_available !== null);
    } catch {
      return false;
    }
  }, null, { timeout: LOAD_TIMEOUT_MS, polling: 100 });
  const s = await status(page);
  check(!s.loading, `the app did not start: ${s.error}`);
  check(await page.evaluate(() => !document.getElementById('loading_text')), 'loading text still shown');
  return s;
}

async function screenshot(page, name) {
  await page.waitForTimeout(300); // let the compositor present the latest frame
  const shot = await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
  fs.writeFileSync(path.join(ARTIFACTS, `${name}.status.json`), JSON.stringify(await status(page), null, 2));
  return shot;
}

// ---------------------------------------------------------------------------------------------
// The tests.

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('WebGPU: renders with the WebGPU renderer on the default scene', () => withPage(WEBGPU_FLAGS, async (page) => {
  const s = await loadApp(page, BASE);
  console.log(`    status: ${JSON.stringify(s)}`);
  check(s.renderer === 'webgpu', `renderer is ${s.renderer}, expected webgpu`);
  check(s.webgpu_available === true, `webgpu_available is ${s.webgpu_available}`);
  check(s.backend === 'cpu' || s.backend === 'webgpu', `unexpected compute backend ${s.backend}`);
  check(s.error === null, `error: ${s.error}`);
  check(s.target === 'moons' && s.flow === 'realnvp', `default scene is ${s.target}/${s.flow}`);
  check(typeof s.step === 'number' && 'loss' in s, 'status lacks step/loss');
  check(s.samples > 0, 'no target samples drawn');
  expectRendered(await screenshot(page, 'webgpu'), 'webgpu.png');

  // The app reacts to input: hovering the plot redraws (coordinates readout).
  const before = (await status(page)).frames;
  await page.mouse.move(700, 350);
  await page.mouse.move(720, 360);
  await page.waitForFunction((n) => JSON.parse(window.flowlab.status()).frames > n, before, { timeout: 30_000 });
}));

test('WebGL2: without WebGPU the app falls back to WebGL2 and still renders', () => withPage(WEBGL2_FLAGS, async (page) => {
  const s = await loadApp(page, BASE);
  console.log(`    status: ${JSON.stringify(s)}`);
  check(s.renderer === 'webgl2', `renderer is ${s.renderer}, expected webgl2`);
  check(s.webgpu_available === false, `webgpu_available is ${s.webgpu_available}, expected false`);
  check(s.backend === 'cpu', `compute backend is ${s.backend}, expected cpu without WebGPU`);
  check(s.error === null, `error: ${s.error}`);
  expectRendered(await screenshot(page, 'webgl2'), 'webgl2.png');
}));

test('URL fragment: the scene is read from #…, and from later hash changes', () => withPage(WEBGL2_FLAGS, async (page) => {
  const s = await loadApp(page, `${BASE}#target=moons&flow=realnvp&autoplay=1&seed=3`);
  check(s.error === null, `error: ${s.error}`);
  check(s.target === 'moons' && s.flow === 'realnvp', `scene is ${s.target}/${s.flow}`);
  check(s.playing === true, 'autoplay=1 did not start playing');
  check(s.seed === 3, `seed is ${s.seed}, expected 3`);
  // Why a target (not a flow) changes here: every target exists, while flows land one by one.
  await page.evaluate(() => { window.location.hash = '#target=8gaussians&autoplay=0&seed=11'; });
  await page.waitForFunction(() => JSON.parse(window.flowlab.status()).target === '8gaussians', null, { timeout: 30_000 });
  const t = await status(page);
  check(t.flow === 'realnvp' && t.playing === false && t.seed === 11 && t.error === null,
    `after hashchange: ${JSON.stringify(t)}`);
  expectRendered(await screenshot(page, 'scene'), 'scene.png');
}));

test('URL fragment: a malformed scene is reported in status().error, defaults kept, app still renders', () => withPage(WEBGL2_FLAGS, async (page) => {
  const s = await loadApp(page, `${BASE}#target=nope&flow=%zz&bogus=1&seed=x&autoplay`);
  console.log(`    error: ${s.error}`);
  check(typeof s.error === 'string', 'no error reported');
  for (const part of ["'nope'", 'percent-encoding', "unknown key 'bogus'", "'seed'", "'autoplay' is not of the form"]) {
    check(s.error.includes(part), `error does not mention ${part}: ${s.error}`);
  }
  check(s.target === 'moons' && s.flow === 'realnvp' && s.seed === 0, `defaults not kept: ${JSON.stringify(s)}`);
  expectRendered(await screenshot(page, 'malformed'), 'malformed.png');
}));

test('Language: #lang=zh fetches the Chinese glyphs only then and speaks Chinese; a Chinese browser gets Chinese unasked; a bad lang is refused', () => withPage(WEBGL2_FLAGS, async (page) => {
  const fonts = [];
  page.on('request', (r) => { if (r.url().endsWith('.ttf')) fonts.push(r.url()); });
  let s = await loadApp(page, `${BASE}#autoplay=0`);
  check(s.lang === 'en' && s.lang_wanted === 'en', `default language: ${s.lang}/${s.lang_wanted}`);
  check(fonts.length === 0, `an English page fetched ${fonts.join(', ')}`);

  await page.goto('about:blank');
  s = await loadApp(page, `${BASE}#autoplay=0&lang=zh`);
  check(s.lang_wanted === 'zh', `lang_wanted is ${s.lang_wanted}`);
  await page.waitForFunction(() => JSON.parse(window.flowlab.status()).lang === 'zh', null, { timeout: 30_000 });
  s = await status(page);
  check(s.error === null, `error: ${s.error}`);
  check(fonts.some((u) => u.endsWith('cjk.ttf')), `the Chinese glyphs were not fetched: ${fonts.join(', ')}`);
  expectRendered(await screenshot(page, 'lang-zh'), 'lang-zh.png');

  await page.goto('about:blank');
  s = await loadApp(page, `${BASE}#autoplay=0&lang=klingon`);
  check(s.lang === 'en' && typeof s.error === 'string' && s.error.includes("'lang'"), `lang=klingon: ${s.lang}, ${s.error}`);

  // A browser set to Chinese, and no lang in the link: Chinese.
  await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'language', { get: () => 'zh-CN' }));
  await page.goto('about:blank');
  s = await loadApp(page, `${BASE}#autoplay=0`);
  check(s.lang_wanted === 'zh', `a zh-CN browser wanted ${s.lang_wanted}`);
  await page.waitForFunction(() => JSON.parse(window.flowlab.status()).lang === 'zh', null, { timeout: 30_000 });
}));

test('Settings persist: a visit without a fragment restores the last scene (localStorage)', () => withPage(WEBGL2_FLAGS, async (page) => {
  await loadApp(page, `${BASE}#target=8gaussians&flow=maf&autoplay=0&seed=7&layers=3`);
  await page.goto('about:blank');
  const s = await loadApp(page, BASE);
  check(s.target === '8gaussians' && s.flow === 'maf' && s.seed === 7 && s.playing === false,
    `not restored: ${JSON.stringify(s)}`);
  check(s.models[0].flow === 'maf', `model: ${JSON.stringify(s.models)}`);
  const hash = await page.evaluate(() => window.location.hash);
  check(hash.includes('layers=3') && hash.includes('target=8gaussians'), `URL not rewritten: ${hash}`);
}));

test('Training: the default scene trains in the browser (steps advance, loss falls)', () => withPage(WEBGL2_FLAGS, async (page) => {
  const s = await loadApp(page, BASE);
  check(s.playing === true, 'the default scene does not autoplay');
  await page.waitForFunction(() => JSON.parse(window.flowlab.status()).step >= 5, null, { timeout: 30_000 });
  const early = await status(page);
  await page.waitForFunction((n) => JSON.parse(window.flowlab.status()).step >= n + 200, early.step, { timeout: 60_000 });
  const later = await status(page);
  console.log(`    step ${early.step}: loss ${early.loss}; step ${later.step}: loss ${later.loss}`);
  check(Number.isFinite(later.loss), `loss is ${later.loss}`);
  check(later.loss < early.loss, `loss did not fall: ${early.loss} -> ${later.loss}`);
  check(later.error === null, `error: ${later.error}`);
  expectRendered(await screenshot(page, 'training'), 'training.png');
}));

// Takes `n` single steps of a paused scene through the hook; returns the status once the first
// model has reported the last of them (within `timeout` ms).
async function stepTo(page, n, timeout = 180_000) {
  const asked = JSON.parse(await page.evaluate((k) => window.flowlab.step(k), n));
  check(asked.stepping === n, `step(${n}) answered ${JSON.stringify(asked)}`);
  await page.waitForFunction((k) => {
    const s = JSON.parse(window.flowlab.status());
    return s.models.length > 0 && s.models[0].step >= k && s.loss !== null;
  }, n, { timeout, polling: 200 });
  return status(page);
}

// Waits until the first model has reported on the executor `backend` at step 0.
async function waitForBackend(page, backend) {
  await page.waitForFunction((b) => {
    const s = JSON.parse(window.flowlab.status());
    return s.models.length > 0 && s.models[0].n_params > 0 && s.models[0].backend === b && s.step === 0;
  }, backend, { timeout: 120_000, polling: 200 });
  return status(page);
}

test('WebGPU compute: backend=webgpu trains on the GPU executor in the worker, its loss after 50 steps matches the CPU path with the same seed; auto keeps the CPU on an emulated GPU and says why; a lost GPU hands training to the CPU', () => withPage(WEBGPU_FLAGS, async (page) => {
  const scene = 'target=twomoons&autoplay=0&seed=3&batch=128';
  await loadApp(page, `${BASE}#${scene}&backend=webgpu`);
  const ready = await waitForBackend(page, 'webgpu');
  check(ready.backend === 'webgpu' && ready.backend_reason === null, `backend ${ready.backend}: ${ready.backend_reason}`);
  // The views are drawn on the CPU all the same: on an emulated GPU a second's pictures take a
  // minute (measured: 50 s for the first set, against 0.12-0.26 s on the CPU).
  const drawn = ready.models[0];
  check(drawn.pictures_backend === 'cpu' && /emulation/.test(drawn.pictures_backend_reason || ''),
    `pictures on ${drawn.pictures_backend}: ${drawn.pictures_backend_reason}`);
  // Why 10 minutes: SwiftShader runs the GPU executor's row chains on the CPU thread by thread,
  // several seconds a step (a correctness test: `auto` never trains on an emulation).
  const gpu = await stepTo(page, 50, 600_000);
  await page.evaluate((s) => { window.location.hash = s; }, `${scene}&backend=cpu`);
  const cpuReady = await waitForBackend(page, 'cpu');
  check(/backend=cpu/.test(cpuReady.backend_reason || ''), `backend_reason: ${cpuReady.backend_reason}`);
  const cpu = await stepTo(page, 50);
  const gap = Math.abs(gpu.loss - cpu.loss) / Math.max(1, Math.abs(cpu.loss));
  console.log(`    loss after 50 steps: GPU ${gpu.loss}, CPU ${cpu.loss} (gap ${gap.toExponential(2)})`);
  check(gpu.step === 50 && cpu.step === 50, `steps ${gpu.step}, ${cpu.step}`);
  check(Number.isFinite(gpu.loss) && gap <= 1e-2, `GPU loss ${gpu.loss} vs CPU ${cpu.loss}`);
  check(gpu.error === null && cpu.error === null, `errors: ${gpu.error}; ${cpu.error}`);
  // Playing on the GPU: steps advance and the loss falls. (SwiftShader emulates the GPU on the
  // CPU at about a step a second: a test of correctness, not of speed.)
  await page.evaluate((s) => { window.location.hash = s; }, `target=twomoons&seed=3&batch=128&backend=webgpu`);
  const playingAt = async (n) => {
    await page.waitForFunction((k) => {
      const s = JSON.parse(window.flowlab.status());
      return s.backend === 'webgpu' && s.step >= k && s.loss !== null && s.models[0].test_nll !== null;
    }, n, { timeout: 300_000, polling: 250 });
    return status(page);
  };
  const early = await playingAt(1);
  const playing = await playingAt(early.step + 8);
  console.log(`    playing on the GPU: step ${early.step} loss ${early.loss}; step ${playing.step} loss ${playing.loss}, held-out NLL ${playing.models[0].test_nll}`);
  check(playing.loss < early.loss, `the loss did not fall while playing: ${early.loss} -> ${playing.loss}`);
  expectRendered(await screenshot(page, 'webgpu-compute'), 'webgpu-compute.png');
  // auto, at a batch the GPU would take: SwiftShader is an emulation, so the CPU trains, and
  // the reason names it; at the app's batch the CPU is chosen without asking for a device.
  await page.evaluate((s) => { window.location.hash = s; }, 'target=twomoons&autoplay=0&seed=3&batch=4096');
  const auto = await waitForBackend(page, 'cpu');
  console.log(`    auto at batch 4096: ${auto.backend_reason}`);
  check(/emulation/.test(auto.backend_reason || ''), `auto's reason: ${auto.backend_reason}`);
  check(auto.models[0].race === null, `auto raced an emulation: ${JSON.stringify(auto.models[0].race)}`);
  await page.evaluate((s) => { window.location.hash = s; }, scene);
  await page.waitForFunction(() => /batch 128/.test(JSON.parse(window.flowlab.status()).backend_reason || ''),
    null, { timeout: 60_000, polling: 200 });
  console.log(`    auto at batch 128: ${(await status(page)).backend_reason}`);
  // A lost GPU (a driver reset, the browser reclaiming it) while the GPU trains: the CPU goes
  // on from the last parameters the GPU returned, and says why.
  await page.evaluate((s) => { window.location.hash = s; }, `target=twomoons&seed=3&batch=128&backend=webgpu`);
  const before = await playingAt(1);
  check(JSON.parse(await page.evaluate(() => window.flowlab.inject_fault('gpu-lost'))).injected === 'gpu-lost',
    'gpu-lost not taken');
  await page.waitForFunction(() => JSON.parse(window.flowlab.status()).backend === 'cpu', null,
    { timeout: 120_000, polling: 250 });
  const lost = await status(page);
  console.log(`    GPU lost at step ${before.step}: ${lost.backend_reason}`);
  check(/failed while training/.test(lost.backend_reason || '') && lost.error === null,
    `after the loss: ${lost.backend_reason}; error ${lost.error}`);
  await page.waitForFunction((k) => JSON.parse(window.flowlab.status()).step >= k + 50, lost.step,
    { timeout: 60_000, polling: 250 });
  const resumed = await status(page);
  check(Number.isFinite(resumed.loss) && resumed.models[0].restarts === 0,
    `after the loss: loss ${resumed.loss}, restarts ${resumed.models[0].restarts}`);
}));

test('WebGPU compute fallback: without WebGPU, backend=webgpu trains on the CPU and says why', () => withPage(WEBGL2_FLAGS, async (page) => {
  await loadApp(page, `${BASE}#target=twomoons&backend=webgpu`);
  await page.waitForFunction(() => JSON.parse(window.flowlab.status()).step >= 20, null, { timeout: 60_000 });
  const later = await status(page);
  console.log(`    backend ${later.backend}: ${later.backend_reason}`);
  check(later.backend === 'cpu' && later.models[0].backend === 'cpu', `backend ${later.backend}`);
  check(/no GPU that computes/.test(later.backend_reason || ''), `backend_reason: ${later.backend_reason}`);
  check(later.error === null, `error: ${later.error}`);
}));

test('Engine in wasm32: the reference RealNVP step is measured in the page (artifacts/bench-wasm.json), its seeded inputs match native', () => withPage(WEBGL2_FLAGS, async (page) => {
  await loadApp(page, `${BASE}#autoplay=0`);
  const report = await page.evaluate(() => JSON.parse(window.flowlab.bench('realnvp')));
  console.log(`    wasm32 bench: ${JSON.stringify(report)}`);
  fs.writeFileSync(path.join(ARTIFACTS, 'bench-wasm.json'), JSON.stringify(report, null, 2));
  check(!report.error, `bench failed: ${report.error}`);
  for (const key of ['train_ms_per_step', 'sample_ms', 'density_ms']) {
    check(report[key] > 0 && Number.isFinite(report[key]), `${key} is ${report[key]}`);
  }
  check(report.n_params === 35344, `reference model has ${report.n_params} parameters, expected 35344`);
  // One seed, the same numbers natively and in wasm32: the seeded initial parameters and data
  // hash to the value tests/numerics/engine_train.rs pins for the native build.
  check(report.inputs_fingerprint === REFERENCE_INPUTS_FINGERPRINT,
    `wasm32 inputs fingerprint ${report.inputs_fingerprint}, native ${REFERENCE_INPUTS_FINGERPRINT}`);
}));

// Training in a Web Worker: the page's own bench (batch 512 on the page's thread) gives the step
// rate a trainer can reach here; the worker trains the same model at the same batch while the
// page keeps drawing. The figures (the worker's share of the bench rate, the page's own frame
// time) go to artifacts/worker-<renderer>.json for the notes: speed goals are benchmarks, not
// timed tests (the target is ≥ 80 %; runs on these shared 2-core machines gave 78–100 %). The test
// asserts what must hold on any machine: training runs in the worker, well above what the UI
// thread managed (~10 steps/s, 5 % of the bench), and the page's frames stay light.
async function workerTrains(flags, name) {
  await withPage(flags, async (page) => {
    // Why only the loss curves: this measures the worker beside a drawing page; the views'
    // pictures take up to 45 % of the trainer's time by design (measured in the "Views" test).
    await loadApp(page, `${BASE}#autoplay=0&batch=512&views=loss`);
    // The median of three benches: one is a median of 200 steps timed to 0.1 ms (the page's
    // clock resolution), and varies by ±10 % from call to call.
    const benches = [];
    for (let i = 0; i < 3; i++) {
      const b = await page.evaluate(() => JSON.parse(window.flowlab.bench('realnvp')));
      check(!b.error, `bench failed: ${b.error}`);
      benches.push(b);
    }
    benches.sort((a, b) => a.train_ms_per_step - b.train_ms_per_step);
    const bench = benches[1];
    const benchRate = 1000 / bench.train_ms_per_step;
    await page.evaluate(() => { window.location.hash = '#autoplay=1&batch=512&views=loss'; });
    await page.waitForFunction(() => JSON.parse(window.flowlab.status()).step >= 100, null, { timeout: 60_000 });
    const samples = [];
    const started = Date.now();
    while (Date.now() - started < 12_000) {
      await page.waitForTimeout(500);
      samples.push({ t: Date.now(), ...(await status(page)) });
    }
    const first = samples[0], last = samples[samples.length - 1];
    const measured = (last.step - first.step) * 1000 / (last.t - first.t);
    // The median of the worker's own one-second figures: robust to the second that held the
    // page's first frames after the change of scene.
    const reported = samples.map((s) => s.models[0].steps_per_sec).sort((a, b) => a - b);
    const meanReported = reported[Math.floor(reported.length / 2)];
    const frameMs = samples.map((s) => s.frame_ms).filter((v) => v !== null);
    const meanFrameMs = frameMs.reduce((a, b) => a + b, 0) / Math.max(1, frameMs.length);
    const figures = {
      renderer: last.renderer, training_thread: last.training_thread,
      bench_train_ms_per_step: bench.train_ms_per_step, bench_train_ms_per_step_all: benches.map((b) => b.train_ms_per_step), bench_steps_per_sec: benchRate,
      worker_steps_per_sec_measured: measured, worker_steps_per_sec_reported_median: meanReported,
      ratio: meanReported / benchRate, frame_ms_mean: meanFrameMs, frame_ms_max: Math.max(...frameMs),
      fps_last: last.fps, frames: last.frames - first.frames, test_nll: last.models[0].test_nll,
    };
    console.log(`    ${JSON.stringify(figures)}`);
    fs.writeFileSync(path.join(ARTIFACTS, `worker-${name}.json`), JSON.stringify(figures, null, 2));
    check(last.training_thread === 'worker', `training_thread is ${last.training_thread}, trainer: ${last.trainer}`);
    check(last.trainer === null, `trainer fallback: ${last.trainer}`);
    check(last.error === null, `error: ${last.error}`);
    check(last.models.length === 1 && last.models[0].flow === 'realnvp', `models: ${JSON.stringify(last.models)}`);
    check(Number.isFinite(last.models[0].test_nll), `test_nll is ${last.models[0].test_nll}`);
    // Two moons' normaliser is known, so the KL is reported too (the NLL less the entropy).
    check(Number.isFinite(last.models[0].kl) && last.models[0].kl < last.models[0].test_nll,
      `kl is ${last.models[0].kl}`);
    check(last.models[0].n_params === 35344, `n_params is ${last.models[0].n_params}`);
    check(meanReported >= 0.5 * benchRate,
      `worker trains at ${meanReported.toFixed(0)} steps/s, < 50 % of the page's ${benchRate.toFixed(0)}`);
    check(Math.abs(measured - meanReported) <= 0.25 * measured,
      `reported ${meanReported.toFixed(0)} steps/s, measured ${measured.toFixed(0)}`);
    // 8 ms on an idle machine, where the in-page bench takes 6.5 ms a step (a full run on
    // 7 Dec 2026); scaled by the bench when the machine is slower (a later run that day took
    // 14.1 ms a step and 11.4 ms a frame, the same 2.2×), so load alone does not fail it.
    const frameBound = 8 * Math.max(1, bench.train_ms_per_step / 6.5);
    check(frameMs.length > 0 && meanFrameMs <= frameBound,
      `frame_ms mean ${meanFrameMs.toFixed(2)} > ${frameBound.toFixed(1)} (bench ${bench.train_ms_per_step} ms a step)`);
    // A software rasterizer redraws training progress about once a second (app.rs:
    // WAKE_INTERVAL_SOFTWARE); a GPU would 25 times.
    check(last.frames - first.frames >= 8, `only ${last.frames - first.frames} frames in 12 s while training`);
  });
}

test('Worker (WebGPU renderer): the default model trains in a Web Worker beside the drawing page (rate vs the in-page bench in artifacts/worker-webgpu.json), frames stay ≤ 8 ms',
  () => workerTrains(WEBGPU_FLAGS, 'webgpu'));
test('Worker (WebGL2 renderer): the same on the WebGL2 fallback', () => workerTrains(WEBGL2_FLAGS, 'webgl2'));

// The share of pixels that differ (by more than a little) between two screenshots of one size.
function pixelDifference(a, b) {
  const pa = decodePng(a), pb = decodePng(b);
  check(pa.width === pb.width && pa.height === pb.height, 'screenshots of different sizes');
  let differ = 0;
  for (let i = 0; i < pa.width * pa.height; i++) {
    let d = 0;
    for (let c = 0; c < 3; c++) d += Math.abs(pa.pixels[i * pa.channels + c] - pb.pixels[i * pb.channels + c]);
    if (d > 48) differ++;
  }
  return differ / (pa.width * pa.height);
}

// Waits until the first model's pictures show `step` ≥ `minStep` and satisfy `extra(status)`.
async function waitForPictures(page, predicate, arg, timeout = 60_000) {
  await page.waitForFunction(([source, arg]) => {
    const s = JSON.parse(window.flowlab.status());
    return new Function('s', 'arg', source)(s, arg);
  }, [predicate, arg], { timeout, polling: 200 });
  return status(page);
}

test('Views: a URL with model settings is applied, training progresses, depth 0 differs from depth K, a new architecture rebuilds', () => withPage(WEBGL2_FLAGS, async (page) => {
  const scene = 'flow=realnvp&layers=6&width=32&activation=silu&lr=0.002&batch=128&seed=4&views=layers';
  let s = await loadApp(page, `${BASE}#${scene}&depth=6&autoplay=1`);
  s = await waitForPictures(page, 'return s.step >= 60 && s.models[0].pictures_step >= 60', null);
  check(s.error === null, `error: ${s.error}`);
  const settings = s.settings;
  for (const [key, want] of [['flow', 'realnvp'], ['layers', 6], ['width', 32], ['activation', 'silu'], ['batch', 128], ['objective', 'mle']]) {
    check(settings[key] === want, `settings.${key} is ${JSON.stringify(settings[key])}, expected ${JSON.stringify(want)}`);
  }
  check(Math.abs(settings.lr - 0.002) < 1e-9, `settings.lr is ${settings.lr}`);
  check(JSON.stringify(s.views) === '["layers"]', `views: ${JSON.stringify(s.views)}`);
  check(s.layers === 6 && s.depth === 6, `layers ${s.layers}, depth ${s.depth}`);
  // Pause so the two pictures show the same model, then compare depth K with depth 0.
  await page.evaluate((f) => { window.location.hash = `#${f}&depth=6&autoplay=0`; }, scene);
  s = await waitForPictures(page, 'return !s.playing && s.depth === 6 && s.models[0].pictures_step === s.step', null);
  const atK = await screenshot(page, 'views-depth-K');
  expectRendered(atK, 'depth K');
  await page.evaluate((f) => { window.location.hash = `#${f}&depth=0&autoplay=0`; }, scene);
  const before = s.models[0].pictures;
  s = await waitForPictures(page, 'return s.depth === 0 && s.models[0].pictures > arg', before);
  const at0 = await screenshot(page, 'views-depth-0');
  const difference = pixelDifference(atK, at0);
  console.log(`    depth 0 vs depth K: ${(100 * difference).toFixed(1)} % of pixels differ`);
  check(difference > 0.05, `depth 0 and depth K look the same (${(100 * difference).toFixed(2)} % differ)`);
  // Another architecture: rebuilt in the worker, no error, it trains.
  await page.evaluate(() => { window.location.hash = '#flow=glow&layers=2&autoplay=1&views=layers,loss'; });
  s = await waitForPictures(page, 'return s.models[0].flow === "glow" && s.step >= 20 && s.models[0].pictures_step > 0', null);
  check(s.error === null, `error after the rebuild: ${s.error}`);
  check(s.layers === 6, `a 2-step Glow has 6 layers (actnorm, linear, coupling), status says ${s.layers}`);
  check(s.settings.flow === 'glow' && s.settings.layers === 2, `settings: ${JSON.stringify(s.settings)}`);
}));

// Samples the status every 500 ms for `ms`.
async function sampleStatus(page, ms) {
  const samples = [];
  const started = Date.now();
  while (Date.now() - started < ms) {
    await page.waitForTimeout(500);
    samples.push({ t: Date.now(), ...(await status(page)) });
  }
  return samples;
}

// A benchmark as much as a test: the goals (pictures ≥ 2/s, frame_ms ≤ 8, time to NLL ≤ 1.80) are
// measured and written to artifacts/views-perf.json for the notes; only behaviour is asserted, since
// times on shared machines drift.
test('Views: pictures keep refreshing while training, the layer view animates 10,000 particles (figures in artifacts/views-perf.json)', () => withPage(WEBGPU_FLAGS, async (page) => {
  const scene = 'target=twomoons&views=layers,density,loss&autoplay=1';
  const loadStarted = Date.now();
  await loadApp(page, `${BASE}#${scene}`);
  // Time to the first frame with the layer view's pictures, then to held-out NLL ≤ 1.80 (the
  // benchmark's two moons, whose entropy is about 1.6 nats).
  let s = await waitForPictures(page, 'return s.models[0].pictures > 0', null);
  const firstPicturesMs = Date.now() - loadStarted;
  s = await waitForPictures(page, 'return s.models[0].test_nll !== null && s.models[0].test_nll <= 1.80', null, 120_000);
  const fitMs = Date.now() - loadStarted;
  const fitStep = s.step;
  // Still depth: pictures come at the trainer's own pace.
  const still = await sampleStatus(page, 6_000);
  const [a, b] = [still[0], still[still.length - 1]];
  const picturesPerSec = (b.models[0].pictures - a.models[0].pictures) * 1000 / (b.t - a.t);
  // Animating: the UI draws every frame, the trainer recomputes as the depth moves.
  await page.evaluate((f) => { window.location.hash = `#${f}&animate=1`; }, scene);
  const moving = await sampleStatus(page, 8_000);
  const last = moving[moving.length - 1];
  const frameMs = moving.map((x) => x.frame_ms).filter((v) => v !== null);
  const meanFrameMs = frameMs.reduce((x, y) => x + y, 0) / Math.max(1, frameMs.length);
  const depths = new Set(moving.map((x) => Math.round(x.depth * 4)));
  const figures = {
    renderer: last.renderer, first_pictures_ms_after_load: firstPicturesMs,
    nll_1_80_ms_after_load: fitMs, nll_1_80_at_step: fitStep, kl_then: s.models[0].kl,
    pictures_per_sec_still: picturesPerSec, pictures_ms_last: b.models[0].pictures_ms,
    steps_per_sec_still: b.models[0].steps_per_sec, steps_per_sec_animating: last.models[0].steps_per_sec,
    frame_ms_mean_animating: meanFrameMs, frame_ms_max_animating: Math.max(...frameMs),
    frames_per_sec_animating: (last.frames - moving[0].frames) * 1000 / (last.t - moving[0].t),
    distinct_depths_seen: depths.size, layers: last.layers,
  };
  console.log(`    ${JSON.stringify(figures)}`);
  fs.writeFileSync(path.join(ARTIFACTS, 'views-perf.json'), JSON.stringify(figures, null, 2));
  await screenshot(page, 'views-animating');
  check(last.error === null, `error: ${last.error}`);
  check(last.step > b.step, 'the hash change restarted or stopped training');
  check(depths.size >= 5, `the depth did not sweep: ${[...depths]}`);
  check(picturesPerSec > 0, 'the pictures stopped refreshing while training');
  check(frameMs.length > 0 && last.frames > moving[0].frames, 'no frames drawn while animating');
}));

// ---------------------------------------------------------------------------------------------
// Your own target, models side by side, the probe, shared links, bad input.

// Drags the mouse from `from` to `to` in small steps, as a hand painting a stroke would.
async function stroke(page, from, to) {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  for (let k = 1; k <= 12; k++) {
    await page.mouse.move(from.x + (to.x - from.x) * k / 12, from.y + (to.y - from.y) * k / 12);
    await page.waitForTimeout(30);
  }
  await page.mouse.up();
}

// The samples plot fills the central panel when it is the only view and the notes are hidden.
const PAINT_SCENE = 'target=painted:two-blobs&views=samples&notes=0&autoplay=1&seed=2';

async function paintsAndTrains(flags, name) {
  let link, painted;
  await withPage(flags, async (page) => {
    let s = await loadApp(page, `${BASE}#${PAINT_SCENE}`);
    check(s.error === null, `error: ${s.error}`);
    check(s.target_kind === 'painted', `target_kind is ${s.target_kind}`);
    const before = s.target_fingerprint;
    check(/^[0-9a-f]{16}$/.test(before), `target_fingerprint is ${before}`);
    await page.waitForFunction(() => JSON.parse(window.flowlab.status()).step >= 10, null, { timeout: 60_000 });
    // A blob in the empty middle between the two painted ones (the plot's centre).
    const box = await page.locator('canvas').boundingBox();
    const centre = { x: box.x + 280 + (box.width - 280) / 2, y: box.y + box.height / 2 };
    await stroke(page, { x: centre.x - 30, y: centre.y - 20 }, { x: centre.x + 30, y: centre.y + 20 });
    s = await waitForPictures(page, 'return s.target_fingerprint !== arg', before, 30_000);
    check(s.target_kind === 'painted' && s.error === null, `after the stroke: ${JSON.stringify(s)}`);
    painted = s.target_fingerprint;
    // Training restarted on the painted target, and goes on.
    s = await waitForPictures(page, 'return s.step >= 20 && s.models[0].test_nll !== null', null);
    check(Number.isFinite(s.models[0].loss), `loss is ${s.models[0].loss}`);
    link = await page.evaluate(() => window.location.href);
    check(link.includes('target=painted:') && !link.includes('two-blobs'), `the link lacks the stroke: ${link}`);
    expectRendered(await screenshot(page, `paint-${name}`), `paint-${name}.png`);
  });
  // The copied link, in a fresh browser profile, restores the same target.
  await withPage(flags, async (page) => {
    const s = await loadApp(page, link);
    check(s.error === null, `error: ${s.error}`);
    check(s.target_kind === 'painted' && s.target_fingerprint === painted,
      `the link gave ${s.target_kind} ${s.target_fingerprint}, the page had ${painted}`);
  });
}

test('Draw (WebGPU renderer): a blob painted with the mouse changes the target, it trains, its link restores it in a fresh page',
  () => paintsAndTrains(WEBGPU_FLAGS, 'webgpu'));
test('Draw (WebGL2 renderer): the same on the WebGL2 fallback', () => paintsAndTrains(WEBGL2_FLAGS, 'webgl2'));

test('Compare: a compare URL trains every model listed in its own worker; probe(x, y) answers for each', () => withPage(WEBGL2_FLAGS, async (page) => {
  await loadApp(page, `${BASE}#compare=maf,nsf(layers=4)&autoplay=1&seed=1`);
  let s = await waitForPictures(page, 'return s.models.length === 3 && s.models.every((m) => m.step >= 20)', null, 90_000);
  check(s.error === null, `error: ${s.error}`);
  check(JSON.stringify(s.models.map((m) => m.flow)) === '["realnvp","maf","nsf"]', `models: ${s.models.map((m) => m.flow)}`);
  check(s.models[2].settings.layers === 4, `nsf settings: ${JSON.stringify(s.models[2].settings)}`);
  check(s.models.every((m) => m.training_thread === 'worker'), `threads: ${s.models.map((m) => m.training_thread)}`);
  check(s.views.includes('compare'), `views: ${s.views}`);
  // The probe: pending until every model's trainer has taken the point apart.
  await page.evaluate(() => window.flowlab.probe(0.5, 0.25));
  await page.waitForFunction(() => JSON.parse(window.flowlab.probe(0.5, 0.25)).models.length === 3, null, { timeout: 60_000, polling: 250 });
  const probe = await page.evaluate(() => JSON.parse(window.flowlab.probe(0.5, 0.25)));
  console.log(`    probe: ${JSON.stringify(probe.models.map((m) => [m.flow, m.log_prob, m.reconstruction_error]))}`);
  for (const m of probe.models) {
    const sum = m.base_log_prob - m.layer_log_dets.reduce((a, b) => a + b, 0);
    check(Number.isFinite(m.log_prob) && Math.abs(sum - m.log_prob) < 1e-3,
      `${m.flow}: log p ${m.log_prob} is not base ${m.base_log_prob} less the log-dets (${sum})`);
    check(m.reconstruction_error >= 0 && m.reconstruction_error < 1e-2, `${m.flow}: |f(f⁻¹(x)) − x| = ${m.reconstruction_error}`);
  }
  expectRendered(await screenshot(page, 'compare'), 'compare.png');
}));

test('Bad input: a malformed target link and a bad dropped file each show one error; the page keeps training', () => withPage(WEBGL2_FLAGS, async (page) => {
  let s = await loadApp(page, `${BASE}#target=painted:AAAA&autoplay=1&seed=5`);
  console.log(`    link error: ${s.error}`);
  check(typeof s.error === 'string' && s.error.includes('painted'), `no error for the cut link: ${s.error}`);
  check(s.target_kind === 'builtin' && s.target === 'moons' && s.seed === 5, `the rest was not kept: ${JSON.stringify(s)}`);
  // A dropped "image" that is not one.
  await page.evaluate(() => {
    const data = new DataTransfer();
    data.items.add(new File([new Uint8Array([1, 2, 3, 4, 5])], 'junk.png', { type: 'image/png' }));
    const canvas = document.querySelector('canvas');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      canvas.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    }
  });
  s = await waitForPictures(page, 'return s.error !== null && s.error.includes("junk.png")', null, 30_000);
  console.log(`    drop error: ${s.error}`);
  check(s.target === 'moons' && s.target_kind === 'builtin', `the target was lost: ${s.target_kind} ${s.target}`);
  const step = s.step;
  s = await waitForPictures(page, 'return s.step >= arg + 20', step);
  check(s.models[0].failure === null, `failure: ${s.models[0].failure}`);
  expectRendered(await screenshot(page, 'bad-input'), 'bad-input.png');
}));

test('Faults: a crashed or hung trainer is replaced and resumes from its checkpoint; a panic shows the crash page with the scene link, and that link restores the scene',
  () => withPage(WEBGL2_FLAGS, async (page) => {
    const scene = '#autoplay=1&seed=3&flow=maf&views=samples,loss';
    let s = await loadApp(page, `${BASE}${scene}`);
    // A checkpoint is taken every 10 s of training.
    s = await waitForPictures(page, 'return s.step >= 50 && s.models[0].inverse_error !== null', null);
    await page.waitForTimeout(11_000);
    s = await status(page);
    const inverse = s.models[0].inverse_error;
    console.log(`    inverse_error ${inverse}, step ${s.step}`);
    check(Number.isFinite(inverse) && inverse < 0.01, `inverse_error is ${inverse}`);

    const crashedAt = s.step;
    check(JSON.parse(await page.evaluate(() => window.flowlab.inject_fault('trainer-crash'))).injected === 'trainer-crash', 'fault not taken');
    s = await waitForPictures(page, 'return s.models[0].restarts === 1 && s.models[0].step > 0', null, 30_000);
    const resumedAt = s.step;
    console.log(`    crash at step ${crashedAt}: resumed at step ${resumedAt}`);
    check(resumedAt >= 20, `resumed from step ${resumedAt}: the checkpoint was lost`);
    s = await waitForPictures(page, 'return s.step >= arg + 20', resumedAt);
    check(s.models[0].failure === null && s.training_thread === 'worker', `after the crash: ${JSON.stringify(s.models[0])}`);

    const hungAt = s.step;
    await page.evaluate(() => window.flowlab.inject_fault('trainer-hang'));
    const hangStarted = Date.now();
    s = await waitForPictures(page, 'return s.models[0].restarts === 2 && s.models[0].step > 0', null, 45_000);
    console.log(`    hang at step ${hungAt}: noticed and replaced after ${Date.now() - hangStarted} ms, resumed at step ${s.step}`);
    s = await waitForPictures(page, 'return s.step >= arg + 20 && s.models[0].steps_per_sec > 0', s.step);
    check(s.models[0].failure === null, `after the hang: ${s.models[0].failure}`);
    expectRendered(await screenshot(page, 'fault-restarted'), 'fault-restarted.png');

    // A panic: the crash page, the scene's link, the settings kept.
    check(JSON.parse(await page.evaluate(() => window.flowlab.inject_fault('nonsense'))).error.includes('trainer-hang'), 'an unknown fault is refused with the names');
    await page.evaluate(() => window.flowlab.inject_fault('panic'));
    await page.waitForFunction(() => JSON.parse(window.flowlab.status()).crashed === true, null, { timeout: 30_000 });
    s = await status(page);
    const page_text = await page.evaluate(() => document.getElementById('crash')?.innerText || '');
    const link = await page.evaluate(() => document.querySelector('#crash a')?.href || '');
    const stored = await page.evaluate(() => localStorage.getItem('flowlab.spec'));
    console.log(`    crash page: ${page_text.slice(0, 120).replace(/\n/g, ' ')}…`);
    check(s.error.includes('inject_fault'), `status error: ${s.error}`);
    check(page_text.includes('saved') && link === s.scene && link.includes('seed=3'), `crash page: ${page_text} / ${link}`);
    check(stored && stored.includes('seed=3'), `stored settings: ${stored}`);
    // Why no expectRendered: the crash page is meant to be one dark colour behind its text.
    await screenshot(page, 'crash-page');
    // The link brings the scene back.
    await page.goto('about:blank');
    s = await loadApp(page, link);
    check(s.seed === 3 && s.flow === 'maf' && s.error === null, `the link restored ${JSON.stringify({ seed: s.seed, flow: s.flow, error: s.error })}`);
  }, { pageErrorsExpected: true }));

(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  console.log(`flowlab e2e: ${BASE} with ${CHROMIUM}`);
  let passed = 0, failed = 0;
  // E2E_ONLY=<text> runs only the tests whose name contains it (for development).
  const only = process.env.E2E_ONLY;
  for (const { name, fn } of tests.filter((t) => !only || t.name.includes(only))) {
    const started = Date.now();
    try {
      await fn();
      passed++;
      console.log(`ok   ${name} (${Date.now() - started} ms)`);
    } catch (error) {
      failed++;
      console.log(`FAIL ${name} (${Date.now() - started} ms)\n    ${error instanceof CheckFailed ? error.message : error.stack || error}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed (screenshots in ${path.relative(process.cwd(), ARTIFACTS) || ARTIFACTS})`);
  process.exit(failed === 0 ? 0 : 1);
})();
