import { test, expect, KEY, login, waitHydrated, runJob, PAGES } from './helpers';

// Stored XSS (probe finding 2), in a real Chromium: text that closes the params textarea
// and opens a script, or an image whose error handler runs, must stay text on every page.

const HOSTILE = `</textarea><script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">"'&`;
const JOB = 'e2e-hostile';

test('hostile text in every field runs no script on any page, and the job form keeps it whole', async ({ page, request }) => {
  const headers = { 'X-Dash-Key': KEY };
  await request.delete(`/api/jobs/${JOB}`, { headers });
  const created = await request.post('/api/jobs', {
    headers,
    data: { id: JOB, name: HOSTILE, kind: 'noop', schedule: '@every 24h', params: { note: HOSTILE, fail: true } },
  });
  expect(created.status(), await created.text()).toBe(201);
  const run = await runJob(request, JOB);
  const dialogs: string[] = [];
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  await login(page);
  const paths = [...PAGES.map(([, path]) => path), `/jobs/${JOB}`, `/runs/${run.id}`, `/runs?job=${JOB}`];
  for (const path of paths) {
    await page.goto(path);
    await waitHydrated(page);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), path).toBeUndefined();
  }
  expect(dialogs).toEqual([]);
  // The form shows the params as they are: the text survived, as text.
  await page.goto(`/jobs/${JOB}`);
  await waitHydrated(page);
  const params = JSON.parse(await page.getByLabel('Params (JSON)').inputValue());
  expect(params.note).toBe(HOSTILE);
  await expect(page.getByLabel('Name')).toHaveValue(HOSTILE);
  await request.delete(`/api/jobs/${JOB}`, { headers });
});
