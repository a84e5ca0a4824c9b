import { type Page } from '@playwright/test';
import { test, expect, expectConsoleError, KEY, login, waitHydrated, runJob } from './helpers';

// The operator's flows through every page, against the real server of scripts/e2e.sh.

const JOB = 'e2e-slow';

async function go(page: Page, path: string) {
  await page.goto(path);
  await waitHydrated(page);
}

test.describe.configure({ mode: 'serial' });

test('a job with an invalid cron is refused in place and nothing is saved; fixed, it saves', async ({ page, request }) => {
  await login(page);
  await go(page, '/jobs/new');
  // The browser checks the id as it is typed (its pattern must compile under the `v`
  // flag Chromium uses, or it is ignored with a console error).
  const id = page.getByLabel('Id');
  await id.fill('Not An Id!');
  expect(await id.evaluate((e: HTMLInputElement) => e.validity.patternMismatch)).toBe(true);
  await id.fill(JOB);
  expect(await id.evaluate((e: HTMLInputElement) => e.validity.valid)).toBe(true);
  await page.getByLabel('Name').fill('E2E slow no-op');
  await page.getByLabel('Kind').selectOption('noop');
  const schedule = page.getByTestId('schedule');
  await schedule.fill('0 0 25 * * *');
  // The save is refused with 422, which the browser logs; nothing else may be.
  expectConsoleError(/save_job: .*status of 422/);
  // Checked as it is typed, before any save.
  await expect(page.getByTestId('schedule-error')).toContainText('hour: 25 is out of range 0-23');
  await page.getByTestId('save').click();
  await expect(page.getByTestId('form-error')).toContainText('hour: 25 is out of range');
  await expect(page).toHaveURL(/\/jobs\/new$/);
  const missing = await request.get(`/api/jobs/${JOB}`, { headers: { 'X-Dash-Key': KEY } });
  expect(missing.status()).toBe(404);

  // Fixed: the preview says it in words and lists the next five fire times.
  await schedule.fill('0 30 1 * * *');
  await page.getByLabel('Time zone').fill('America/New_York');
  await expect(page.getByTestId('preview')).toContainText('At 01:30');
  await expect(page.getByTestId('preview').locator('li')).toHaveCount(5);
  await expect(page.getByTestId('schedule-error')).toHaveCount(0);
  await page.getByLabel('Params (JSON)').fill('{"duration_ms": 2500}');
  await page.getByTestId('save').click();
  await expect(page).toHaveURL(/\/jobs$/);
  await expect(page.getByTestId('toasts')).toContainText(`Saved job ${JOB}`);
  const row = page.locator(`[data-testid="job-row"][data-job="${JOB}"]`);
  await expect(row).toContainText('At 01:30');
  const saved = await (await request.get(`/api/jobs/${JOB}`, { headers: { 'X-Dash-Key': KEY } })).json();
  expect(saved.timezone).toBe('America/New_York');
  expect(saved.params.duration_ms).toBe(2500);
});

test('run now: the run appears in the runs list and finishes there, live', async ({ page }) => {
  await login(page);
  await go(page, '/runs');
  const toggle = page.getByTestId('auto-refresh');
  if (!(await toggle.isChecked())) await toggle.check();
  await go(page, '/jobs');
  await page.locator(`[data-testid="job-row"][data-job="${JOB}"]`).getByTestId('run-now').click();
  await expect(page.getByTestId('toasts')).toContainText(/Run #\d+ started/);
  await go(page, '/runs');
  const run = page.locator(`[data-testid="run-row"][data-job="${JOB}"]`).first();
  await expect(run).toHaveAttribute('data-status', 'running');
  // No reload: the page follows the run's end over the events stream.
  await expect(run).toHaveAttribute('data-status', 'succeeded', { timeout: 15_000 });
});

test("a running run's log is followed live, then the page shows it finished", async ({ page, request }) => {
  await login(page);
  const r = await request.post(`/api/jobs/${JOB}/run`, { headers: { 'X-Dash-Key': KEY } });
  const id = (await r.json()).run.id;
  await go(page, `/runs/${id}`);
  const log = page.getByTestId('run-log');
  await expect(log).toContainText(`run ${id} of ${JOB} started`);
  await expect(page.getByTestId('run-status').first()).toHaveText('running');
  await expect(log).toHaveAttribute('data-done', 'true', { timeout: 15_000 });
  await expect(log).toContainText('succeeded');
  await expect(page.getByTestId('run-status').first()).toHaveText('succeeded');
  await expect(page.getByTestId('run-output')).toContainText('"slept_ms": 2500');
});

test('runs filter by job and status', async ({ page }) => {
  await login(page);
  await go(page, `/runs?job=${JOB}&status=succeeded`);
  const rows = page.getByTestId('run-row');
  await expect(rows.first()).toBeVisible();
  for (const job of await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute('data-job')))) {
    expect(job).toBe(JOB);
  }
  await go(page, `/runs?job=${JOB}&status=failed`);
  await expect(page.getByText('No runs.')).toBeVisible();
});

test('disabling a job from the list asks why first, then sticks', async ({ page, request }) => {
  await login(page);
  await go(page, '/jobs');
  const row = page.locator(`[data-testid="job-row"][data-job="${JOB}"]`);
  // Unticked, it asks why; kept, nothing changed.
  await row.getByTestId('enabled').click();
  const ask = page.getByTestId('ask-row');
  await ask.getByRole('button', { name: 'Keep' }).click();
  await expect(ask).toHaveCount(0);
  await expect(row.getByTestId('enabled')).toBeChecked();
  await row.getByTestId('enabled').click();
  // The reason is required: the browser refuses an empty one.
  await ask.getByTestId('confirm-disable').click();
  expect(await ask.getByTestId('reason').evaluate((e: HTMLInputElement) => e.validity.valueMissing)).toBe(true);
  await ask.getByTestId('reason').fill('flaky upstream, disabled until fixed');
  await ask.getByTestId('confirm-disable').click();
  await expect(page.getByTestId('toasts')).toContainText('Job updated');
  await expect
    .poll(async () => (await (await request.get(`/api/jobs/${JOB}`, { headers: { 'X-Dash-Key': KEY } })).json()).enabled)
    .toBe(false);
  await page.reload();
  await waitHydrated(page);
  await expect(row.getByTestId('enabled')).not.toBeChecked();
});

test('a brief opens, rendered from markdown, with the data it was built from', async ({ page, request }) => {
  await runJob(request, 'finance-metrics');
  await runJob(request, 'ceo-brief');
  await login(page);
  await go(page, '/briefs');
  const brief = page.getByTestId('brief').first();
  await expect(brief.locator('h1')).toContainText('CEO brief');
  await expect(brief.locator('table')).toContainText('Runway');
  await brief.getByText('The data it was built from').click();
  await expect(brief.locator('pre')).toContainText('"finance"');
});

test('the finance chart is drawn from the sample ledger', async ({ page, request }) => {
  await runJob(request, 'finance-metrics');
  await login(page);
  await go(page, '/finance');
  const chart = page.getByTestId('finance-chart');
  // Two years of months, one group of bars each.
  await expect(chart.locator('g[data-month]')).toHaveCount(24);
  await expect(chart.locator('g[data-month="2025-01"]')).toBeAttached();
  await expect(page.locator('.facts dt', { hasText: 'Runway' })).toBeVisible();
});

test('metrics and the audit log show what happened', async ({ page }) => {
  await login(page);
  await go(page, '/stats');
  await expect(page.getByTestId('metrics')).toBeVisible();
  // The day's figures are recomputed every 10 s; the job's runs show by then.
  await expect(async () => {
    await page.reload();
    await expect(page.locator('table')).toContainText(JOB, { timeout: 1000 });
  }).toPass({ timeout: 25_000 });
  await go(page, '/audit');
  const audit = page.getByTestId('audit');
  await expect(audit).toContainText('/api/fn/save_job');
  await expect(audit).toContainText('session');
  await expect(audit).toContainText(`POST /api/jobs/${JOB}/run`);
});

test('the nodes page shows this one node leading on SQLite, reached from the overview', async ({ page }) => {
  await login(page);
  await go(page, '/');
  await expect(page.getByTestId('role')).toHaveText('only node');
  await page.getByTestId('role').getByRole('link').click();
  await expect(page).toHaveURL(/\/nodes$/);
  const nodes = page.getByTestId('nodes');
  await expect(nodes.locator('tbody tr')).toHaveCount(1);
  await expect(nodes.locator('tbody tr')).toHaveAttribute('data-leader', 'true');
  await expect(nodes).toContainText('(this node)');
  await expect(page.getByText('One node on SQLite')).toBeVisible();
  // No terms to show: one node leads for good.
  await expect(page.getByTestId('leaders')).toHaveCount(0);
});

test('a job is deleted only after confirming', async ({ page, request }) => {
  await login(page);
  await go(page, '/jobs');
  const row = page.locator(`[data-testid="job-row"][data-job="${JOB}"]`);
  const ask = page.getByTestId('ask-row');
  await row.getByRole('button', { name: 'Delete' }).click();
  await ask.getByRole('button', { name: 'Keep' }).click();
  await expect(row).toBeVisible();
  await row.getByRole('button', { name: 'Delete' }).click();
  await ask.getByTestId('reason').fill('replaced by nightly-v2');
  await ask.getByTestId('confirm-delete').click();
  await expect(page.getByTestId('toasts')).toContainText('Job deleted');
  await expect(row).toHaveCount(0);
  const gone = await request.get(`/api/jobs/${JOB}`, { headers: { 'X-Dash-Key': KEY } });
  expect(gone.status()).toBe(404);
  // The audit log says why.
  const audit = await (await request.get('/api/fn/list_audit', { headers: { 'X-Dash-Key': KEY } })).text();
  expect(audit).toContain('replaced by nightly-v2');
});

test('every page is usable by keyboard, with a visible focus ring', async ({ page }) => {
  await login(page);
  await go(page, '/jobs');
  await page.keyboard.press('Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
  expect(outline).not.toBe('none');
  // The nav links are reachable and followable from the keyboard.
  await page.getByRole('link', { name: 'Runs' }).focus();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/runs$/);
});

test('a job applied from a file is marked so, and marked drifted once edited by hand', async ({ page, request }) => {
  const H = { 'X-Dash-Key': KEY };
  const file = { jobs: [{ id: 'e2e-coded', kind: 'noop', schedule: '@every 1h' }] };
  const applied = await request.post('/api/jobs/apply', { headers: H, data: file });
  expect(applied.status(), await applied.text()).toBe(200);
  await login(page);
  await page.goto('/jobs');
  await waitHydrated(page);
  const row = page.locator('[data-testid="job-row"][data-job="e2e-coded"]');
  await expect(row.getByTestId('from-file')).toBeVisible();
  const edited = await request.patch('/api/jobs/e2e-coded', { headers: H, data: { schedule: '@every 2h' } });
  expect(edited.status()).toBe(200);
  await page.reload();
  await waitHydrated(page);
  await expect(row.getByTestId('drift')).toHaveText('edited since applied');
  await page.screenshot({ path: 'test-results/screenshots/jobs-drift.png', fullPage: true });
});
