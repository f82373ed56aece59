import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = process.env.LARDER_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Debian's Chromium, headless. Playwright gives every launch a fresh temporary profile (user-data-dir) and removes it on
 * close; a persistent context would take three times as long to start. Without the background-networking flags Chromium
 * keeps calling home (component updates, sync, safe browsing), which on a closed network floods it with failures.
 */
export async function launchBrowser(): Promise<{ browser: Browser; context: BrowserContext; close(): Promise<void> }> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  return {
    browser,
    context,
    async close() {
      await browser.close().catch(() => {});
    },
  };
}

/**
 * Everything that went wrong in a page: uncaught errors and Content-Security-Policy violations (Chromium reports them as
 * console messages starting "Refused to …"; the securitypolicyviolation event catches any it words differently).
 */
export function watchForProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    const text = m.text();
    if (/Refused to|Content Security Policy|CSP violation/i.test(text)) problems.push(`console: ${text}`);
  });
  void page.addInitScript(
    'document.addEventListener("securitypolicyviolation", (e) => console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI));',
  );
  return problems;
}
