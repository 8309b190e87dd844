// Shared helpers of the browser scripts: Debian's chromium driven by
// playwright-core, named steps, a screenshot of every step, and a report the Go
// test reads.
import fs from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

export const env = process.env;
export const outDir = env.OUT_DIR ?? fs.mkdtempSync('/tmp/temporal-opa-browser-');
fs.mkdirSync(outDir, { recursive: true });

// The machine allows loopback only: every background connection is off.
const args = [
  '--headless=new',
  '--no-sandbox', // root in CI containers
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-default-apps',
  '--disable-dev-shm-usage',
];

export async function launch() {
  const userDataDir = fs.mkdtempSync(path.join(outDir, 'profile-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: env.CHROMIUM ?? '/usr/bin/chromium',
    args,
    headless: true,
    viewport: { width: 1400, height: 1000 },
  });
}

// A fresh browser context (own cookies and storage) for one user.
export async function newUser(name) {
  const context = await launch();
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(Number(env.STEP_TIMEOUT_MS ?? 20000));
  const api = []; // every /api/v1 response: method, path, status, body (errors only)
  page.on('response', async (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/api/v1/')) return;
    const entry = { method: r.request().method(), path: u.pathname, status: r.status() };
    api.push(entry); // at once: a step may look for it before the body arrives
    if (r.status() >= 400) entry.body = await r.text().catch(() => '');
  });
  return { name, context, page, api };
}

let stepNo = 0;
const results = [];

// step runs fn, takes a screenshot named after it, and records the outcome. A
// failing step throws after its screenshot (name FAILED-...).
export async function step(user, title, fn) {
  stepNo += 1;
  const file = `${String(stepNo).padStart(2, '0')}-${user.name}-${title.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`;
  const t0 = Date.now();
  try {
    const out = await fn(user.page);
    await user.page.screenshot({ path: path.join(outDir, `${file}.png`) }).catch(() => {});
    results.push({ user: user.name, step: title, ok: true, ms: Date.now() - t0 });
    console.log(`ok   ${user.name}: ${title} (${Date.now() - t0} ms)`);
    return out;
  } catch (err) {
    await user.page.screenshot({ path: path.join(outDir, `FAILED-${file}.png`), fullPage: true }).catch(() => {});
    fs.writeFileSync(path.join(outDir, `FAILED-${file}.html`), await user.page.content().catch(() => ''));
    fs.writeFileSync(path.join(outDir, `FAILED-${file}.api.json`), JSON.stringify(user.api, null, 2));
    results.push({ user: user.name, step: title, ok: false, error: String(err?.message ?? err) });
    console.log(`FAIL ${user.name}: ${title}: ${err?.message ?? err}`);
    throw err;
  }
}

export function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

// run runs main and exits 0 when every step passed, 1 otherwise; the report
// (results.json) lists the steps.
export async function run(main) {
  let code = 0;
  try {
    await main();
  } catch (err) {
    code = 1;
    console.log(`browser test failed: ${err?.stack ?? err}`);
  }
  fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(results, null, 2));
  console.log(`${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length} failed`);
  process.exit(code);
}

// waitAPI waits for the response of the API call whose path matches re (and method).
export function waitAPI(page, method, re) {
  return page.waitForResponse((r) => r.request().method() === method && re.test(new URL(r.url()).pathname));
}
