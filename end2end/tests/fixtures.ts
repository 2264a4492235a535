import { test as base, expect, Page } from "@playwright/test";

// Every spec fails on a browser console error, an uncaught exception, or a
// hydration panic: the page fixture collects them and checks after the test.
export const test = base.extend<{ page: Page }>({
  page: async ({ page }, use) => {
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("console", (msg) => {
      // A refused API call (wrong password, 403, 409 …) is expected behaviour the
      // page shows to the user; Chromium still logs it. Anything else fails.
      const refusedApiCall =
        /status of 4\d\d/.test(msg.text()) && /\/api\//.test(msg.location().url ?? "");
      if (msg.type() === "error" && !refusedApiCall) problems.push(`console error: ${msg.text()}`);
      if (/panicked|hydration/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
    });
    await use(page);
    expect(problems, problems.join("\n")).toEqual([]);
  },
});

export { expect };

export const ADMIN_PASSWORD = process.env.GRAYCAST_ADMIN_PASSWORD ?? "e2e-admin-password";

/** Waits until the WebAssembly front end has hydrated the page. */
export async function hydrated(page: Page) {
  await page.waitForFunction(() => (window as any).__graycast_hydrated === true);
}

export async function signIn(page: Page, username = "admin", password = ADMIN_PASSWORD) {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Namespaces" })).toBeVisible();
  await hydrated(page);
}

/** Opens a real SSE subscriber (Node fetch over TCP) and keeps reading it in the
 *  background, so the server never sees a stuck subscriber; returns a closer. */
export async function subscribe(base: string, token: string, ns: string, env: string, clientId: string, labels: string) {
  const controller = new AbortController();
  const url = `${base}/api/v1/watch?namespace=${ns}&env=${env}&client_id=${clientId}&labels=${encodeURIComponent(labels)}`;
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, signal: controller.signal });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  (async () => {
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch {}
  })();
  return () => controller.abort();
}
