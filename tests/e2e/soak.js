// The soak: scenes trained for a long time in headless Chromium, sampled every minute.
// usage: node tests/e2e/soak.js http://127.0.0.1:PORT/ MINUTES OUT.json   (scripts/soak runs it)
//
// Two pages side by side: the default scene, and a comparison of four models. Every minute it
// records each page's steps per second (from window.flowlab.status()) and the resident memory
// of all of the page's Chromium processes (renderer, GPU, the trainers' workers), then writes
// the series and a first-vs-last-ten-minutes summary. A benchmark, not a test: it fails only
// if a page errors or stops training.
'use strict';
const { chromium } = require('playwright-core');
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const BASE = process.argv[2] || 'http://127.0.0.1:8080/';
const MINUTES = Number(process.argv[3] || 60);
const OUT = process.argv[4] || path.join(__dirname, 'artifacts', 'soak.json');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SAMPLE_MS = Number(process.env.SOAK_SAMPLE_MS || 60_000);
const FLAGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-gpu'];
const SCENES = {
  default: '#autoplay=1',
  compare4: '#autoplay=1&compare=maf,nsf,glow',
};

// Resident memory (MiB) of every process started with this profile directory.
function rssMiB(profile) {
  const lines = execFileSync('ps', ['-eo', 'rss=,args='], { encoding: 'utf8' }).split('\n');
  const kib = lines.filter((l) => l.includes(profile)).map((l) => parseInt(l.trim(), 10) || 0);
  return kib.reduce((a, b) => a + b, 0) / 1024;
}

async function open(name, hash) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `flowlab-soak-${name}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1100, height: 700 }, args: FLAGS,
  });
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${BASE}${hash}`);
  await page.waitForFunction(() => {
    try { return JSON.parse(window.flowlab.status()).step > 0; } catch { return false; }
  }, null, { timeout: 180_000, polling: 500 });
  return { name, profile, context, page, errors, samples: [] };
}

async function sample(run, minute) {
  const s = JSON.parse(await run.page.evaluate(() => window.flowlab.status()));
  const point = {
    minute,
    rss_mib: rssMiB(run.profile),
    steps: s.models.map((m) => m.step),
    steps_per_sec: s.models.map((m) => m.steps_per_sec),
    test_nll: s.models.map((m) => m.test_nll),
    restarts: s.models.map((m) => m.restarts),
    error: s.error,
  };
  run.samples.push(point);
  console.log(`${run.name} min ${minute}: ${point.rss_mib.toFixed(0)} MiB, steps/s ${point.steps_per_sec.map((v) => v.toFixed(0)).join('/')}`);
}

// Mean of a per-sample figure over the samples whose minute is in [from, to).
function mean(samples, from, to, figure) {
  const chosen = samples.filter((p) => p.minute >= from && p.minute < to).map(figure);
  return chosen.length ? chosen.reduce((a, b) => a + b, 0) / chosen.length : null;
}

(async () => {
  const runs = [];
  for (const [name, hash] of Object.entries(SCENES)) runs.push(await open(name, hash));
  const started = Date.now();
  for (let minute = 1; minute <= MINUTES; minute++) {
    await new Promise((r) => setTimeout(r, started + minute * SAMPLE_MS - Date.now()));
    for (const run of runs) await sample(run, minute);
  }
  const window = Math.min(10, Math.max(1, Math.floor(MINUTES / 3)));
  const summary = {};
  let healthy = true;
  for (const run of runs) {
    const total = (p) => p.steps_per_sec.reduce((a, b) => a + b, 0);
    summary[run.name] = {
      window_minutes: window,
      rss_mib_first: mean(run.samples, 1, 1 + window, (p) => p.rss_mib),
      rss_mib_last: mean(run.samples, MINUTES - window + 1, MINUTES + 1, (p) => p.rss_mib),
      steps_per_sec_first: mean(run.samples, 1, 1 + window, total),
      steps_per_sec_last: mean(run.samples, MINUTES - window + 1, MINUTES + 1, total),
      page_errors: run.errors,
    };
    const last = run.samples[run.samples.length - 1];
    healthy &&= run.errors.length === 0 && last.error === null && total(last) > 0;
    await run.context.close();
    fs.rmSync(run.profile, { recursive: true, force: true });
  }
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify({ minutes: MINUTES, summary, series: Object.fromEntries(runs.map((r) => [r.name, r.samples])) }, null, 2));
  console.log(JSON.stringify(summary, null, 2));
  process.exit(healthy ? 0 : 1);
})();
