import {
  test as base,
  expect,
  type Page,
  type APIRequestContext,
  type BrowserContext,
} from '@playwright/test';

/** Console messages a test expects (a refused login's 401, say); reset for every test. */
let expected: RegExp[] = [];

/** Lets the current test's pages log errors matching `pattern` (and only those). */
export function expectConsoleError(pattern: RegExp) {
  expected.push(pattern);
}

/** Every test fails on an error in the browser's console, or an uncaught page error, on
 *  any page it opened (also in contexts of its own): what a user would see in devtools
 *  is a bug, unless the test said it expects it. */
export const test = base.extend<{ consoleErrors: void }>({
  consoleErrors: [
    async ({ page, browser }, use) => {
      expected = [];
      const errors: string[] = [];
      const watch = (context: BrowserContext) => {
        context.on('console', (m) => {
          if (m.type() === 'error') errors.push(`${m.location().url}: ${m.text()}`);
        });
        context.on('weberror', (e) => errors.push(`uncaught: ${e.error().message}`));
      };
      watch(page.context());
      const newContext = browser.newContext.bind(browser);
      browser.newContext = async (options) => {
        const context = await newContext(options);
        watch(context);
        return context;
      };
      await use();
      browser.newContext = newContext;
      const unexpected = errors.filter((e) => !expected.some((p) => p.test(e)));
      expect(unexpected, 'errors in the browser console').toEqual([]);
    },
    { auto: true },
  ],
});
export { expect };

export const KEY = process.env.DASHBOARD_KEY ?? '';

/** Logs in through the form and waits until the overview has hydrated. */
export async function login(page: Page) {
  await page.goto('/login');
  await page.getByLabel('Dashboard key').fill(KEY);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/$/);
  await waitHydrated(page);
}

export async function waitHydrated(page: Page) {
  await expect(page.locator('[data-hydrated="true"]')).toBeVisible();
}

/** Drives the scheduler through the REST API with the key, as a script would. */
export async function api(request: APIRequestContext, action: 'start' | 'stop' | 'restart') {
  const r = await request.post(`/api/automations/${action}`, { headers: { 'X-Dash-Key': KEY } });
  expect(r.status()).toBe(200);
  return r.json();
}

/** Runs a job through the REST API and waits for it to finish; returns the run. */
export async function runJob(request: APIRequestContext, job: string) {
  const r = await request.post(`/api/jobs/${job}/run?wait=true`, { headers: { 'X-Dash-Key': KEY } });
  expect(r.status(), `${job}: ${await r.text()}`).toBe(200);
  return (await r.json()).run;
}

/** Every page with data to show: [name, path, test id of content that proves it loaded]. */
export const PAGES: [string, string, string][] = [
  ['overview', '/', 'status-badge'],
  ['jobs', '/jobs', 'job-row'],
  ['job-new', '/jobs/new', 'preview'],
  ['runs', '/runs', 'run-row'],
  ['briefs', '/briefs', 'brief'],
  ['finance', '/finance', 'finance-chart'],
  ['metrics', '/stats', 'metrics'],
  ['maintenance', '/maintenance', 'maintenance'],
  ['alerts', '/alerts', 'channel-form'],
  ['checks', '/checks', 'check-form'],
  ['audit', '/audit', 'audit'],
  ['nodes', '/nodes', 'nodes'],
];

/** Runs the built-ins that give every page something to show: a brief, a finance
 *  snapshot, a health report, metrics and runs. */
export async function seedPages(request: APIRequestContext) {
  for (const job of ['finance-metrics', 'self-heal', 'metrics-summary', 'ceo-brief']) {
    await runJob(request, job);
  }
}
