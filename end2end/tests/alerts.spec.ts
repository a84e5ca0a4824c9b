import http from 'node:http';
import { type AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { type Page } from '@playwright/test';
import { test, expect, expectConsoleError, KEY, login, waitHydrated, seedPages } from './helpers';

// Alerts in the browser: add a webhook channel (sent a test notice) and a rule, fail a
// job, and see the incident — on the overview and on the Alerts page — with the delivery
// the receiver on loopback got, signed with the channel's secret. Then an inbound check.

const H = { 'X-Dash-Key': KEY };

async function go(page: Page, path: string) {
  await page.goto(path);
  await waitHydrated(page);
}

type Got = { headers: http.IncomingHttpHeaders; body: string };

// The first to log in: the figures the overview caches then already hold runs, for the
// pages' tests after this file.
test.beforeAll(async ({ request }) => seedPages(request));

test('add a webhook channel and a rule, fail a job, see the incident and its delivery', async ({ page, request }) => {
  const got: Got[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  try {
    const r = await request.post('/api/jobs', {
      headers: H,
      data: { id: 'e2e-boom', kind: 'noop', schedule: '0 0 3 * * *', params: { fail: true } },
    });
    expect([201, 409]).toContain(r.status());
    await login(page);
    await go(page, '/alerts');
    const channel = page.getByTestId('channel-form');
    await channel.getByLabel('Id').fill('e2e-hook');
    await channel.getByLabel('Kind').selectOption('webhook');
    await channel.getByLabel('URL').fill(url);
    await channel.getByLabel('Signing secret (webhook)').fill('e2e-secret');
    await page.getByTestId('add-channel').click();
    await expect(page.getByTestId('toasts')).toContainText('Channel e2e-hook added');
    const row = page.locator('[data-testid="channel-row"][data-channel="e2e-hook"]');
    await expect(row).toContainText('set (hidden)');
    await expect(page.getByTestId('channels')).not.toContainText('e2e-secret');
    await row.getByTestId('test-channel').click();
    await expect(page.getByTestId('test-result')).toContainText('test notice taken (200)');
    expect(JSON.parse(got[0].body).event).toBe('test');

    // A rule without a channel is refused, naming the field.
    expectConsoleError(/add_rule: .*status of 422/);
    const rule = page.getByTestId('rule-form');
    await rule.getByLabel('Id').fill('e2e-fails');
    await rule.getByLabel('Channels (comma-separated)').fill('e2e-nope');
    await page.getByTestId('add-rule').click();
    await expect(page.getByTestId('rule-error')).toContainText('channels[0]');
    await rule.getByLabel('Channels (comma-separated)').fill('e2e-hook');
    await rule.getByLabel('Jobs (empty: every job)').fill('e2e-boom');
    await page.getByTestId('add-rule').click();
    await expect(page.getByTestId('toasts')).toContainText('Rule e2e-fails added');
    await expect(page.locator('[data-testid="rule-row"][data-rule="e2e-fails"]')).toContainText('job e2e-boom');

    const run = await request.post('/api/jobs/e2e-boom/run?wait=true', { headers: H });
    expect((await run.json()).run.status).toBe('failed');
    await expect.poll(() => got.length, { timeout: 15000 }).toBe(2);
    const notice = got[1];
    expect(JSON.parse(notice.body)).toMatchObject({ event: 'opened', job: 'e2e-boom' });
    const signature = 'sha256=' + createHmac('sha256', 'e2e-secret').update(notice.body).digest('hex');
    expect(notice.headers['x-echopilot-signature']).toBe(signature);

    // The overview shows it first; the Alerts page has it with its delivery.
    await go(page, '/');
    await expect(page.getByTestId('open-incidents')).toContainText('job:e2e-boom');
    await go(page, '/alerts');
    const incident = page.locator('[data-testid="incident"][data-rule="e2e-fails"]');
    await expect(incident).toHaveAttribute('data-state', 'open');
    await expect(incident).toContainText('asked to fail');
    await expect(incident.locator('[data-testid="delivery"][data-status="sent"]')).toContainText('e2e-hook');
  } finally {
    receiver.close();
  }
});

test('add an inbound check, ping it without a key, see it up', async ({ page, playwright, baseURL }) => {
  await login(page);
  await go(page, '/checks');
  const form = page.getByTestId('check-form');
  await form.getByLabel('Id').fill('e2e-backup');
  await form.getByLabel('Name').fill('Off-site backup');
  await form.getByLabel('Every (or a schedule)').fill('1h');
  await form.getByLabel('Grace').fill('10m');
  await page.getByTestId('add-check').click();
  await expect(page.getByTestId('toasts')).toContainText('Check e2e-backup added');
  const row = page.locator('[data-testid="check-row"][data-check="e2e-backup"]');
  await expect(row).toHaveAttribute('data-state', 'new');
  const pingUrl = (await row.locator('code').last().textContent()) ?? '';
  expect(pingUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ping\/[0-9a-f]{32}$/);
  const anonymous = await playwright.request.newContext({ baseURL });
  expect((await anonymous.get(pingUrl)).status()).toBe(200);
  await anonymous.dispose();
  await go(page, '/checks');
  await expect(row).toHaveAttribute('data-state', 'up');
  await row.getByTestId('ping-history').click();
  await expect(page.getByTestId('pings').getByTestId('ping')).toHaveCount(1);
  await expect(page.getByTestId('ping').first()).toHaveAttribute('data-kind', 'success');
});
