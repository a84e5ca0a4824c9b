import { type Page } from '@playwright/test';
import { test, expect, expectConsoleError, KEY, login, waitHydrated } from './helpers';

// The operator's controls in the browser: pause with a reason and resume, pause
// everything, cancel a running run from its page and rerun it, bulk cancel by the
// filter, run with params.

const H = { 'X-Dash-Key': KEY };

async function go(page: Page, path: string) {
  await page.goto(path);
  await waitHydrated(page);
}

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ request }) => {
  for (const job of [
    { id: 'e2e-tick', kind: 'noop', schedule: '@every 1s', misfire: 'skip' },
    { id: 'e2e-long', kind: 'noop', schedule: '0 0 3 * * *', overlap: 'allow', timeout_secs: 600, params: { duration_ms: 600000 } },
  ]) {
    const r = await request.post('/api/jobs', { headers: H, data: job });
    expect([201, 409]).toContain(r.status());
  }
});

test('pause a job from the jobs page with a reason: the banner, the reason, the ledger, resume', async ({ page, request }) => {
  await login(page);
  await go(page, '/jobs');
  const row = page.locator('[data-testid="job-row"][data-job="e2e-tick"]');
  await row.getByTestId('pause').click();
  const form = page.getByTestId('pause-form');
  await form.getByTestId('pause-reason').fill('vendor outage, INC-123');
  await form.getByTestId('pause-for').fill('1h');
  await form.getByTestId('confirm-pause').click();
  await expect(page.getByTestId('toasts')).toContainText('Paused');
  const banner = page.getByTestId('pause-banner');
  await expect(banner).toContainText('1 job paused');
  await expect(banner).toContainText('vendor outage, INC-123');
  await expect(row.getByTestId('paused-note')).toContainText('vendor outage, INC-123');
  await expect(row.getByTestId('paused-note')).toContainText('until 20');
  await expect(row.getByTestId('paused-note')).toContainText('by session');
  // On every page.
  await go(page, '/runs');
  await expect(page.getByTestId('pause-banner')).toContainText('vendor outage, INC-123');
  // The swallowed slots are in the ledger, saying why.
  await expect
    .poll(async () => {
      const runs = (await (await request.get('/api/runs?job=e2e-tick&status=skipped', { headers: H })).json()).runs;
      return runs.some((r: { error: string }) => r.error.startsWith('paused: vendor outage, INC-123 (by session'));
    })
    .toBe(true);
  await go(page, '/jobs');
  await row.getByTestId('resume').click();
  await expect(page.getByTestId('toasts')).toContainText('Resumed');
  await expect(page.getByTestId('pause-banner')).toHaveCount(0);
  await expect(row.getByTestId('paused-note')).toHaveCount(0);
  const job = await (await request.get('/api/jobs/e2e-tick', { headers: H })).json();
  expect(job.paused).toBeNull();
});

test('pause everything, see it on the overview, resume from the banner', async ({ page, request }) => {
  await login(page);
  await go(page, '/jobs');
  await page.getByTestId('pause-all').click();
  const form = page.getByTestId('pause-form');
  await form.getByTestId('pause-reason').fill('database migration');
  await form.getByTestId('confirm-pause').click();
  const banner = page.getByTestId('pause-banner');
  await expect(banner).toContainText('Everything is paused: database migration');
  await expect(banner).toContainText('until resumed');
  const status = await (await request.get('/api/automations/status', { headers: H })).json();
  expect(status.paused.reason).toBe('database migration');
  await go(page, '/');
  await page.getByTestId('resume-all').click();
  await expect(page.getByTestId('pause-banner')).toHaveCount(0);
  const after = await (await request.get('/api/automations/status', { headers: H })).json();
  expect(after.paused).toBeNull();
});

test('cancel a running run from its page, then rerun it', async ({ page, request }) => {
  const started = await (await request.post('/api/jobs/e2e-long/run', { headers: H })).json();
  const id = started.run.id;
  await login(page);
  await go(page, `/runs/${id}`);
  await expect(page.getByTestId('run-status')).toHaveText('running');
  await page.getByTestId('cancel-reason').fill('started by mistake');
  await page.getByTestId('cancel-run').click();
  await expect(page.getByTestId('run-status')).toHaveText('cancelled');
  await expect(page.getByTestId('run-error')).toContainText('started by mistake');
  const run = await (await request.get(`/api/runs/${id}`, { headers: H })).json();
  expect(run.status).toBe('cancelled');
  expect(run.error).toMatch(/^cancelled by session .*: started by mistake$/);
  // Rerun opens the new run, linked to the original.
  await page.getByTestId('rerun-run').click();
  await expect(page.getByTestId('rerun-of')).toHaveText(`#${id}`);
  const rerunId = Number(page.url().split('/').pop());
  await request.post(`/api/runs/${rerunId}/cancel`, { headers: H });
});

test('bulk cancel by the runs filter: counted and confirmed first', async ({ page, request }) => {
  for (let i = 0; i < 3; i++) await request.post('/api/jobs/e2e-long/run', { headers: H });
  await login(page);
  await go(page, '/runs?job=e2e-long&status=running');
  await expect(page.getByTestId('run-row')).toHaveCount(3);
  await page.getByTestId('bulk-cancel').click();
  await expect(page.getByTestId('bulk-confirm')).toContainText('Cancel 3 runs?');
  await page.getByTestId('bulk-go').click();
  await expect(page.getByTestId('toasts')).toContainText('3 runs done');
  await expect(page.getByText('No runs.')).toBeVisible();
  const running = (await (await request.get('/api/runs?job=e2e-long&status=running', { headers: H })).json()).runs;
  expect(running).toHaveLength(0);
});

test('run with params from the job page: shown on the run; an unknown param is refused in place', async ({ page, request }) => {
  await login(page);
  await go(page, '/jobs/e2e-long');
  const params = page.getByTestId('override-params');
  expectConsoleError(/run_with_params: .*status of 422/);
  await params.fill('{"nope": 1}');
  await page.getByTestId('run-with-params').click();
  await expect(page.getByTestId('override-error')).toContainText('params.nope');
  await params.fill('{"duration_ms": 5}');
  await page.getByTestId('run-with-params').click();
  await expect(page).toHaveURL(/\/runs\/\d+$/);
  await expect(page.getByTestId('run-params')).toContainText('"duration_ms": 5');
  const id = Number(page.url().split('/').pop());
  const run = await (await request.get(`/api/runs/${id}?wait=true`, { headers: H })).json();
  expect(run.params).toEqual({ duration_ms: 5 });
  expect(run.status).toBe('succeeded');
});

test('add a maintenance window and see the job editor preview mark the slots it swallows', async ({ page, request }) => {
  await login(page);
  await go(page, '/maintenance');
  const form = page.getByTestId('window-form');
  await form.getByLabel('Id', { exact: true }).fill('e2e-freeze');
  await form.getByLabel('Name', { exact: true }).fill('Release freeze');
  await form.getByLabel('Kind', { exact: true }).selectOption('once');
  const now = Date.now();
  await form.getByLabel('Start (RFC 3339)').fill(new Date(now - 60_000).toISOString());
  await form.getByLabel('End (RFC 3339)').fill(new Date(now + 3_600_000).toISOString());
  await form.getByLabel(/^Jobs/).fill('e2e-tick');
  await form.getByTestId('add-window').click();
  await expect(page.getByTestId('toasts')).toContainText('Window e2e-freeze added');
  await expect(page.locator('[data-testid="window-row"][data-window="e2e-freeze"]')).toContainText('Release freeze');

  await go(page, '/jobs/e2e-tick');
  const marks = page.getByTestId('preview').getByTestId('swallowed');
  await expect(marks).toHaveCount(5);
  await expect(marks.first()).toContainText('maintenance: Release freeze');
  // The ledger says it too.
  await expect
    .poll(async () => {
      const runs = (await (await request.get('/api/runs?job=e2e-tick&status=skipped', { headers: H })).json()).runs;
      return runs.some((r: { error: string }) => r.error === 'maintenance: Release freeze');
    })
    .toBe(true);

  await go(page, '/maintenance');
  await page.locator('[data-testid="window-row"][data-window="e2e-freeze"]').getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('toasts')).toContainText('Window deleted');
  await expect(page.locator('[data-testid="window-row"]')).toHaveCount(0);
});
