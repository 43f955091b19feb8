// How soon the page's default model fits each built-in target, in headless Chromium.
// usage: node tests/e2e/fit.js http://127.0.0.1:PORT/ [OUT.json]   (scripts/fit-in-page runs it)
//
// For every target of the catalog it opens `#target=NAME` (everything else at its default: the
// default flow, its size, batch and optimiser), lets it train for SECONDS of wall time from the
// first step the page shows, and polls window.flowlab.status() every 50 ms. Each held-out score
// is recorded with two clocks: the wall time since that first step (what a class sees; the
// views' pictures, scoring and the UI share the machine) and `scored_train_secs` (the
// trainer's own clock, steps only). It reports the held-out NLL and KL at 3 s and at SECONDS,
// and the seconds until twomoons' held-out NLL first reaches 1.80. A benchmark, not a test: it
// fails only if a page errors or does not train.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

const BASE = process.argv[2] || 'http://127.0.0.1:8080/';
const OUT = process.argv[3] || path.join(__dirname, 'artifacts', 'fit.json');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SECONDS = Number(process.env.FIT_SECONDS || 10);
const EARLY_SECONDS = 3;
const NLL_GOAL = 1.80;
// More of the scene for every target (`&activation=tanh`), to compare settings.
const EXTRA = process.env.FIT_FRAGMENT || '';
const FLAGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-gpu'];

// The catalog's names, as the registry lists them (`flowlab train --help` has no list; the
// page's own status() names the target it parsed, so a wrong name here shows as an error).
const TARGETS = (process.env.FIT_TARGETS || [
  'moons', 'twomoons', '8gaussians', 'pinwheel', '2spirals', 'checkerboard', 'rings', 'swissroll',
  'circles', 'u1', 'u2', 'u3', 'u4', 'banana', 'funnel', 'ringmix', 'mixture', 'paint_blobs',
  'paint_ring', 'paint_flow',
].join(',')).split(',');

const status = (page) => page.evaluate(() => JSON.parse(window.flowlab.status()));

// The latest score at or before `secs` on the given clock.
function scoreAt(scores, clock, secs) {
  const before = scores.filter((s) => s[clock] <= secs);
  return before.length ? before[before.length - 1] : null;
}

async function fit(context, target) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const opened = Date.now();
  await page.goto(`${BASE}#target=${target}${EXTRA}`);
  await page.waitForFunction(() => {
    try { return JSON.parse(window.flowlab.status()).step > 0; } catch { return false; }
  }, null, { timeout: 180_000, polling: 20 });
  const started = Date.now();
  const scores = [];
  let last = null;
  while (Date.now() - started < SECONDS * 1000 + 2500) {
    last = await status(page);
    const model = last.models[0];
    const scored = scores[scores.length - 1];
    if (model && model.test_nll !== null && (!scored || scored.train_secs !== model.scored_train_secs)) {
      scores.push({
        wall_secs: (Date.now() - started) / 1000,
        train_secs: model.scored_train_secs,
        step: model.step,
        nll: model.test_nll,
        kl: model.kl,
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const model = last.models[0];
  const row = {
    target,
    settings: model.settings,
    secs_to_first_step: (started - opened) / 1000,
    steps_per_sec: model.steps_per_sec,
    early: scoreAt(scores, 'wall_secs', EARLY_SECONDS),
    end: scoreAt(scores, 'wall_secs', SECONDS),
    error: last.error,
    page_errors: errors,
  };
  const goal = scores.find((s) => s.nll <= NLL_GOAL);
  row.nll_goal = goal ? { wall_secs: goal.wall_secs, train_secs: goal.train_secs, step: goal.step } : null;
  row.scores = scores;
  await page.close();
  return row;
}

const fmt = (v, digits = 3) => (v === null || v === undefined ? '—' : Number(v).toFixed(digits));

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flowlab-fit-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 800 }, args: FLAGS,
  });
  const rows = [];
  let healthy = true;
  for (const target of TARGETS) {
    const row = await fit(context, target);
    rows.push(row);
    healthy &&= row.page_errors.length === 0 && row.error === null && row.end !== null;
    const at = (s) => (s ? `NLL ${fmt(s.nll)} KL ${fmt(s.kl)} (step ${s.step})` : '—');
    console.log(`${target.padEnd(12)} ${EARLY_SECONDS} s: ${at(row.early)} | ${SECONDS} s: ${at(row.end)}`
      + (row.nll_goal ? ` | NLL ≤ ${NLL_GOAL} at ${fmt(row.nll_goal.wall_secs, 2)} s wall, ${fmt(row.nll_goal.train_secs, 2)} s training` : ''));
  }
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify({ seconds: SECONDS, nll_goal: NLL_GOAL, rows }, null, 2));
  process.exit(healthy ? 0 : 1);
})();
