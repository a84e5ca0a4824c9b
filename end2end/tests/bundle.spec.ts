import { type Page } from '@playwright/test';
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { test, expect, login, waitHydrated, PAGES, seedPages } from './helpers';

// The dashboard's WASM is split per page (cargo leptos build --split). Each page must
// hydrate on a first visit (empty cache) with the chunks the server preloads for it, and a
// click to another page must fetch that page's chunks on demand. What each first visit
// downloads (gzip -9, as a compressing proxy would send it) goes to
// test-results/bundle.json, which `make bench` prints.
/** Records every .wasm file the page downloads, as path -> gzipped bytes. File names carry
 *  no content hash, so each must be revalidated (`no-cache`) to stay in step after an
 *  upgrade: a file without it is recorded as -1. */
function recordWasm(page: Page) {
  const files = new Map<string, Promise<number>>();
  page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (path.endsWith('.wasm')) {
      const revalidated = response.headers()['cache-control'] === 'no-cache';
      files.set(
        path,
        response.body().then((b) => (revalidated ? gzipSync(b, { level: 9 }).length : -1)),
      );
    }
  });
  return files;
}

test.beforeAll(async ({ request }) => seedPages(request));

const kib = (bytes: number) => Math.round((bytes / 1024) * 10) / 10;

test('each page hydrates on a first visit with its own WASM chunks', async ({ browser }) => {
  const session = await browser.newContext();
  await login(await session.newPage());
  const storageState = await session.storageState();
  await session.close();

  const figures: Record<string, { wasm_files: number; gzip_kib: number }> = {};
  for (const [name, path, testid] of PAGES) {
    // A new context has an empty HTTP cache: this is a first visit.
    const context = await browser.newContext({ storageState });
    const page = await context.newPage();
    const files = recordWasm(page);
    await page.goto(path);
    await waitHydrated(page);
    await expect(page.getByTestId(testid).first()).toBeVisible();
    const sizes = await Promise.all(files.values());
    expect(sizes.length, `${name}: the main file and at least one chunk`).toBeGreaterThan(1);
    expect(sizes.filter((n) => n < 0), `${name}: every file served with no-cache`).toEqual([]);
    figures[name] = { wasm_files: sizes.length, gzip_kib: kib(sizes.reduce((a, b) => a + b, 0)) };
    await context.close();
  }
  mkdirSync('test-results', { recursive: true });
  writeFileSync('test-results/bundle.json', JSON.stringify(figures, null, 2) + '\n');
});

test('a click to another page loads its chunks and it works', async ({ page }) => {
  await login(page);
  const files = recordWasm(page);
  await page.getByRole('link', { name: 'Finance' }).click();
  await expect(page).toHaveURL(/\/finance$/);
  await expect(page.getByTestId('finance-chart').first()).toBeVisible();
  expect(files.size, 'finance chunks fetched on navigation').toBeGreaterThan(0);
});
