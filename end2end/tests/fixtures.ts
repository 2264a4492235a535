import { test as base, expect, Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";

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

/** A real subscriber over TCP: opens the watch stream (Node fetch), and for every `config` event
 *  it receives reports the version applied, or failed when `fails(version)` says so — what the
 *  agent does after running its `--exec` and `--check`. Returns a closer. */
export async function agent(base: string, token: string, ns: string, env: string, clientId: string, fails: (v: number) => boolean = () => false) {
  const controller = new AbortController();
  const url = `${base}/api/v1/watch?namespace=${ns}&env=${env}&client_id=${clientId}&labels=${encodeURIComponent("region=beijing")}`;
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, signal: controller.signal });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const report = async (event: { key: string; version: number }) => {
    const failed = fails(event.version);
    await fetch(`${base}/api/v1/report`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        client_id: clientId, namespace: ns, env, key: event.key, version: event.version,
        status: failed ? "failed" : "applied",
        message: failed ? `nginx: [emerg] unknown directive "gzip_vary" in v${event.version}` : undefined,
      }),
      signal: controller.signal,
    });
  };
  (async () => {
    let buffer = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = frame.split("\n");
          const name = lines.find((l) => l.startsWith("event: "))?.slice(7);
          const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (name === "config" && data) await report(JSON.parse(data));
        }
      }
    } catch {}
  })();
  return () => controller.abort();
}

/** Runs axe-core (WCAG 2.0 and 2.1, levels A and AA) on the page as it is now and fails on any
 *  serious or critical violation, naming the rule and the elements. */
export async function expectAccessible(page: Page, where: string) {
  const results = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
    .analyze();
  const bad = results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => {
      const nodes = v.nodes.slice(0, 5).map((n) => `    ${n.target.join(" ")}: ${n.failureSummary?.replace(/\s+/g, " ")}`);
      return `${v.impact} ${v.id} (${v.nodes.length}×): ${v.help}\n${nodes.join("\n")}`;
    });
  expect(bad, `axe on ${where}:\n${bad.join("\n")}`).toEqual([]);
}

/** Fails when the page scrolls sideways (wider than the screen), naming the widest elements. The
 *  screen's width is the emulated device's: a phone widens its layout viewport (and so
 *  `innerWidth`) to fit content that overflows. */
export async function expectNoSidewaysScroll(page: Page, where: string) {
  const screen = page.viewportSize()!.width;
  const wide = await page.evaluate((width) => {
    if (document.documentElement.scrollWidth <= width && window.innerWidth <= width) return [];
    // The outermost elements that stick out, outside boxes that scroll by themselves.
    return [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > width + 1)
      .filter((e) => !e.parentElement || e.parentElement.getBoundingClientRect().right <= width + 1 || e.parentElement === document.body)
      .slice(0, 8)
      .map((e) => `${e.tagName.toLowerCase()}${e.className ? "." + String(e.className).replace(/\s+/g, ".") : ""} right=${Math.round(e.getBoundingClientRect().right)}`)
      .concat([`scrollWidth ${document.documentElement.scrollWidth}, innerWidth ${window.innerWidth} > ${width}`]);
  }, screen);
  expect(wide, `${where} scrolls sideways:\n${wide.join("\n")}`).toEqual([]);
}
