import { test, expect, login, waitHydrated, PAGES, seedPages } from './helpers';

// Saves a screenshot of every page, light and dark, at desktop and a phone's 375 px, as
// test output (end2end/test-results/screenshots/) for people to look at.
test.beforeAll(async ({ request }) => seedPages(request));

for (const scheme of ['light', 'dark'] as const) {
  test(`screenshots (${scheme})`, async ({ page }) => {
    await page.emulateMedia({ colorScheme: scheme });
    await page.setViewportSize({ width: 1200, height: 800 });
    await page.goto('/login');
    await waitHydrated(page);
    await page.screenshot({ path: `test-results/screenshots/login-${scheme}.png`, fullPage: true });
    await login(page);
    for (const [name, path, testid] of PAGES) {
      await page.goto(path);
      await waitHydrated(page);
      await expect(page.getByTestId(testid).first()).toBeVisible();
      await page.screenshot({ path: `test-results/screenshots/${name}-${scheme}.png`, fullPage: true });
    }
    await page.goto('/runs');
    await page.getByTestId('run-row').first().getByRole('link').first().click();
    await expect(page.getByTestId('run-log')).toHaveAttribute('data-done', 'true');
    await page.screenshot({ path: `test-results/screenshots/run-${scheme}.png`, fullPage: true });
    // At a phone's width nothing pushes the page sideways (wide tables scroll in place).
    await page.setViewportSize({ width: 375, height: 740 });
    for (const [name, path, testid] of PAGES) {
      await page.goto(path);
      await waitHydrated(page);
      await expect(page.getByTestId(testid).first()).toBeVisible();
      expect(await page.evaluate(() => document.documentElement.scrollWidth), `${name} at 375 px`).toBeLessThanOrEqual(375);
      await page.screenshot({ path: `test-results/screenshots/${name}-375-${scheme}.png`, fullPage: true });
    }
  });
}
