import { test, expect } from '@playwright/test';
import { login, waitHydrated } from './helpers';

// Saves a screenshot of every page, light and dark, at desktop and phone widths, as test
// output (end2end/test-results/screenshots/) for people to look at.
for (const scheme of ['light', 'dark'] as const) {
  test(`screenshots (${scheme})`, async ({ page }) => {
    await page.emulateMedia({ colorScheme: scheme });
    await page.setViewportSize({ width: 1200, height: 800 });
    await page.goto('/login');
    await waitHydrated(page);
    await page.screenshot({ path: `test-results/screenshots/login-${scheme}.png`, fullPage: true });
    await login(page);
    await expect(page.getByTestId('status-badge')).toBeVisible();
    await page.screenshot({ path: `test-results/screenshots/overview-${scheme}.png`, fullPage: true });
    await page.setViewportSize({ width: 375, height: 740 });
    await page.screenshot({ path: `test-results/screenshots/overview-375-${scheme}.png`, fullPage: true });
  });
}
