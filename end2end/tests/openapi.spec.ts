import SwaggerParser from '@apidevtools/swagger-parser';
import { test, expect, KEY, login } from './helpers';

// The API's document by an independent validator — the parser client generators build
// on — so a client can be generated from it; and its page, reached from the dashboard.
// (That every real answer matches the document is the server's `openapi` test.)

test('the API document is valid OpenAPI 3.1 and every route in it has an operation id', async ({ request }) => {
  const r = await request.get('/api/openapi.json', { headers: { 'X-Dash-Key': KEY } });
  expect(r.status()).toBe(200);
  const doc = await r.json();
  expect(doc.openapi).toMatch(/^3\.1\./);
  // Throws, naming the fault, unless the document is valid and every $ref resolves.
  const api = await SwaggerParser.validate(structuredClone(doc));
  const operations = Object.values(api.paths ?? {}).flatMap((item) => Object.values(item ?? {}));
  expect(operations.length).toBeGreaterThan(55);
  const ids = operations.map((op) => (op as { operationId?: string }).operationId);
  expect(ids.every(Boolean), 'every operation has an id').toBe(true);
  expect(new Set(ids).size, 'operation ids are unique').toBe(ids.length);
});

test('the API reference opens from the dashboard and links each type', async ({ page }) => {
  await login(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API' }).click();
  await expect(page).toHaveURL(/\/api\/docs$/);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('EchoPilot API');
  const run = page.locator('.op', { hasText: '/api/jobs/{id}/run' }).first();
  await expect(run).toContainText('Started');
  await run.getByRole('link', { name: 'Started' }).first().click();
  await expect(page).toHaveURL(/#schema-Started$/);
  await expect(page.locator('#schema-Started')).toContainText('run');
});
