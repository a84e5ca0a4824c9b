import { test, expect, api, login, waitHydrated, KEY } from './helpers';

test.beforeEach(async ({ request }) => {
  await api(request, 'start');
});

test('a wrong key is refused with a message and no session', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel('Dashboard key').fill('not-the-key');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toContainText('not right');
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
});

test('logging in shows the overview and keeps the key out of browser storage', async ({ page, context }) => {
  await login(page);
  const badge = page.getByTestId('status-badge');
  await expect(badge).toHaveText('Running');
  await expect(page.getByTestId('pid')).toHaveText(/^\d+$/);
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  expect(stored).not.toContain(KEY);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'echopilot_session');
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe('Strict');
  expect(cookies.map((c) => c.value).join()).not.toContain(KEY);
});

test('Stop and Start update the badge without a reload', async ({ page }) => {
  await login(page);
  const badge = page.getByTestId('status-badge');
  await expect(badge).toHaveText('Running');
  let navigations = 0;
  page.on('framenavigated', () => navigations++);
  await page.getByTestId('stop').click();
  await expect(badge).toHaveText('Stopped');
  await expect(badge).toHaveAttribute('data-state', 'stopped');
  await page.getByTestId('start').click();
  await expect(badge).toHaveText('Running');
  await page.getByTestId('restart').click();
  await expect(badge).toHaveText('Running');
  expect(navigations).toBe(0);
});

test('with auto-refresh on, a stop made through the API shows within one interval', async ({ page, request }) => {
  await page.clock.install();
  await login(page);
  const toggle = page.getByTestId('auto-refresh');
  await toggle.check();
  await expect(page.getByTestId('status-badge')).toHaveText('Running');
  await api(request, 'stop');
  await page.clock.runFor(10_000);
  await expect(page.getByTestId('status-badge')).toHaveText('Stopped');

  // The setting survives a reload.
  await page.reload();
  await waitHydrated(page);
  await expect(page.getByTestId('auto-refresh')).toBeChecked();
});

test('with auto-refresh off, the page does not poll', async ({ page, request }) => {
  await page.clock.install();
  await login(page);
  const toggle = page.getByTestId('auto-refresh');
  await toggle.uncheck();
  await expect(page.getByTestId('status-badge')).toHaveText('Running');
  let polls = 0;
  page.on('request', (r) => {
    if (r.url().includes('/api/fn/')) polls++;
  });
  await api(request, 'stop');
  await page.clock.runFor(35_000);
  // Give any request the timers might have started a chance to show up.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
  expect(polls).toBe(0);
  await expect(page.getByTestId('status-badge')).toHaveText('Running');
  await page.reload();
  await waitHydrated(page);
  await expect(page.getByTestId('auto-refresh')).not.toBeChecked();
  await expect(page.getByTestId('status-badge')).toHaveText('Stopped');
});

test('logging out ends the session', async ({ page }) => {
  await login(page);
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
});
