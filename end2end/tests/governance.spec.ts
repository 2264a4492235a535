import { request as playwrightRequest, APIRequestContext, Page } from "@playwright/test";
import { test, expect, signIn, hydrated, expectAccessible, expectNoSidewaysScroll } from "./fixtures";

// Change governance in the dashboard (issue 28): a protected prod turns a release into a change
// request another releaser approves; a request bound to what changed since is refused as stale;
// a freeze refuses a release and says until when; break glass stays red until reviewed.
// Each test leaves prod unprotected and unfrozen, whatever happens, for the specs after it.

const n = Date.now() % 100000;
const ns = `gov${n}`;
const editor = `ed${n}`;
const releaser = `rel${n}`;
const key = "app.json";
const base = `/api/v1/namespaces/${ns}/envs/prod/configs`;

let admin: APIRequestContext;

/** An API client with an admin token (approvals and reviews still come from people). */
async function adminApi(page: Page): Promise<APIRequestContext> {
  if (admin) return admin;
  await signIn(page);
  const token = await page.request.post("/api/v1/tokens", { data: { name: `gov-${n}`, role: "admin" } });
  expect(token.status()).toBe(201);
  const { token: secret } = await token.json();
  const api = await playwrightRequest.newContext({
    baseURL: process.env.BASE_URL,
    extraHTTPHeaders: { Authorization: `Bearer ${secret}` },
  });
  for (const [username, role] of [[editor, "editor"], [releaser, "releaser"]]) {
    const created = await api.post("/api/v1/users", { data: { username, password: `${username}-password`, role } });
    expect(created.status()).toBe(201);
  }
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  expect((await api.post(base, { data: { key, format: "json", content: '{"pool": 1}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/${key}/release`, { data: { version: 1 } })).status()).toBe(201);
  admin = api;
  return admin;
}

/** Saves the next version of the config (as the admin token) and returns its number. */
async function save(api: APIRequestContext, pool: number): Promise<number> {
  const latest = await (await api.get(`${base}/${key}/versions?limit=1`)).json();
  const baseVersion = latest.versions[0].version;
  const saved = await api.post(`${base}/${key}/versions`, {
    data: { content: `{"pool": ${pool}}\n`, base_version: baseVersion, message: `pool ${pool}` },
  });
  expect(saved.status()).toBe(201);
  return (await saved.json()).version;
}

async function protect(api: APIRequestContext, approvals: number) {
  const r = await api.put("/api/v1/environments/prod/protection", { data: { approvals } });
  expect(r.status()).toBe(200);
}

async function unfreeze(api: APIRequestContext) {
  const list = await (await api.get("/api/v1/environments/prod/freezes")).json();
  for (const f of list.freezes ?? list) {
    if (String(f.reason).startsWith("e2e")) await api.delete(`/api/v1/environments/prod/freezes/${f.id}`);
  }
}

/** Signs in as someone else (the session cookie goes first). */
async function as(page: Page, username: string) {
  await page.context().clearCookies();
  if (username === "admin") await signIn(page);
  else await signIn(page, username, `${username}-password`);
}

async function openConfig(page: Page) {
  await page.goto(`/ns/${ns}/prod/${key}`);
  await hydrated(page);
}

test("an editor requests a release in a protected prod; another releaser approves it and it goes live", async ({ page }) => {
  const api = await adminApi(page);
  const v = await save(api, 2);
  await protect(api, 1);
  try {
    await as(page, editor);
    await openConfig(page);
    // Said before the user acts.
    await expect(page.getByTestId("protected-hint")).toContainText("prod is protected: your change becomes a request needing 1 approval");
    await page.locator(`tr[data-version="${v}"]`).getByRole("button", { name: "Request release" }).click();
    const dialog = page.getByRole("dialog");
    await expect(dialog.getByTestId("release-effect")).toContainText("prod is protected: your change becomes a request needing 1 approval");
    await dialog.locator("input[name=release-message]").fill("bigger pool");
    await dialog.locator("input[name=confirm-env]").fill("prod");
    await dialog.getByRole("button", { name: `Request release v${v}` }).click();
    // The request's own page: pending, and its author cannot approve it.
    await expect(page).toHaveURL(/\/requests\/\d+$/);
    const id = page.url().split("/").pop();
    await expect(page.getByTestId("request-action")).toHaveText(`release v${v} as stable (now v1)`);
    await expect(page.locator("[data-status=pending]")).toContainText("0 of 1 approvals");
    await expect(page.getByTestId("approve")).toBeDisabled();
    await expect(page.getByTestId("diff")).toContainText('"pool": 2');
    await expectAccessible(page, "a pending change request");
    // Nothing is live yet.
    await openConfig(page);
    await expect(page.getByTestId("serving-now")).toContainText("STABLE v1");
    await expect(page.getByTestId("open-requests")).toContainText(`#${id}`);

    await as(page, releaser);
    await expect(page.getByTestId("requests-waiting")).toContainText("1");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: /Requests/ }).click();
    await expect(page.getByRole("heading", { name: "Change requests" })).toBeVisible();
    await hydrated(page);
    const row = page.locator(`tr[data-request="${id}"]`);
    await expect(row).toContainText("pending");
    await expectAccessible(page, "the requests page");
    // Filters live in the URL.
    await page.getByRole("tab", { name: "Applied" }).click();
    await expect(page).toHaveURL(/status=applied/);
    await expect(page.locator(`tr[data-request="${id}"]`)).toHaveCount(0);
    await page.getByRole("tab", { name: "Pending" }).click();
    await page.locator(`tr[data-request="${id}"]`).getByRole("link", { name: `#${id}` }).click();
    await hydrated(page);
    await page.locator("textarea[name=comment]").fill("looks right");
    await page.getByTestId("approve").click();
    await expect(page.locator("[data-status=applied]")).toBeVisible();
    await expect(page.getByTestId("approvals")).toContainText(`${releaser} approved`);
    await openConfig(page);
    await expect(page.getByTestId("serving-now")).toContainText(`STABLE v${v}`);
    await expect(page.getByTestId("requests-waiting")).toHaveCount(0);
  } finally {
    await protect(api, 0);
  }
});

test("a request whose config moved on is refused as stale, with the reason shown", async ({ page }) => {
  const api = await adminApi(page);
  const a = await save(api, 3);
  const b = await save(api, 4);
  await protect(api, 1);
  try {
    await as(page, editor);
    const ask = async (version: number) => {
      const r = await page.request.post(`${base}/${key}/change-requests`, {
        data: { action: "release", body: { version }, message: `release v${version}` },
      });
      expect(r.status()).toBe(201);
      return (await r.json()).id;
    };
    const first = await ask(a);
    const second = await ask(b);
    await as(page, releaser);
    await page.goto(`/requests/${second}`);
    await hydrated(page);
    await page.getByTestId("approve").click();
    await expect(page.locator("[data-status=applied]")).toBeVisible();
    // The first was bound to the stable release it was made against.
    await page.goto(`/requests/${first}`);
    await hydrated(page);
    await expect(page.getByTestId("stale-now")).toContainText("the stable release moved");
    await page.getByTestId("approve").click();
    // The refused approval says why, and stays said after the request reloads as stale.
    await expect(page.getByRole("alert").filter({ hasText: "was not applied: the stable release moved" })).toBeVisible();
    await expect(page.locator("[data-status=stale]")).toBeVisible();
    await expect(page.getByTestId("request-ended")).toContainText("the stable release moved");
    await openConfig(page);
    await expect(page.getByTestId("serving-now")).toContainText(`STABLE v${b}`);
  } finally {
    await protect(api, 0);
  }
});

test("a freeze refuses a release and the banner says until when", async ({ page }) => {
  const api = await adminApi(page);
  const v = await save(api, 5);
  try {
    await as(page, "admin");
    await page.goto("/admin/environments/prod");
    await hydrated(page);
    await expect(page.getByTestId("protection-state")).toContainText("Not protected");
    // A one-off window from a minute ago to two hours ahead (the inputs are UTC).
    const local = (d: Date) => d.toISOString().slice(0, 16);
    const until = new Date(Date.now() + 2 * 3600_000);
    await page.locator("input[name=freeze-from]").fill(local(new Date(Date.now() - 60_000)));
    await page.locator("input[name=freeze-to]").fill(local(until));
    await page.locator("input[name=freeze-reason]").fill("e2e release freeze");
    await page.getByRole("button", { name: "Add window" }).click();
    await expect(page.getByTestId("freeze-list")).toContainText("e2e release freeze");
    await expect(page.getByTestId("freeze-list")).toContainText("in force");
    await expect(page.getByTestId("frozen-mark")).toBeVisible();
    // A weekly window that does not hold now, drawn on the week.
    const days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    const later = days[(new Date().getUTCDay() + 6 + 3) % 7];
    await page.getByLabel("Every week").check();
    await page.locator("select[name=freeze-from-day]").selectOption(later);
    await page.locator("input[name=freeze-from-time]").fill("10:00");
    await page.locator("select[name=freeze-to-day]").selectOption(later);
    await page.locator("input[name=freeze-to-time]").fill("12:00");
    await page.locator("input[name=freeze-zone]").fill("Europe/Berlin");
    await page.locator("input[name=freeze-reason]").fill("e2e weekly window");
    await page.getByRole("button", { name: "Add window" }).click();
    await expect(page.getByTestId("freeze-list")).toContainText("e2e weekly window");
    await expect(page.getByTestId("week-view")).toContainText("10:00–12:00 (Europe/Berlin): e2e weekly window");
    await expect(page.getByTestId("next-windows")).toContainText("e2e weekly window");
    await expectAccessible(page, "an environment's settings");

    // Marked where the environment's configs appear.
    await page.goto(`/ns/${ns}/prod`);
    await hydrated(page);
    await expect(page.getByRole("tab", { name: /prod.*frozen/ })).toBeVisible();
    await openConfig(page);
    const hhmm = until.toISOString().slice(11, 16);
    await expect(page.getByTestId("frozen-banner")).toContainText("prod is frozen until");
    await expect(page.getByTestId("frozen-banner")).toContainText(hhmm);
    await page.locator(`tr[data-version="${v}"]`).getByRole("button", { name: "Release" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.locator("input[name=confirm-env]").fill("prod");
    await dialog.getByRole("button", { name: `Release v${v}` }).click();
    await expect(dialog.getByRole("alert")).toContainText("prod is frozen (e2e release freeze) until");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await expect(page.getByTestId("serving-now")).not.toContainText(`STABLE v${v}`);
  } finally {
    await unfreeze(api);
  }
});

test("break glass shows a red banner until another releaser reviews it", async ({ page }) => {
  const api = await adminApi(page);
  const v = await save(api, 6);
  await protect(api, 1);
  try {
    await as(page, "admin");
    await openConfig(page);
    await page.locator(`tr[data-version="${v}"]`).getByRole("button", { name: "Request release" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.locator("input[name=confirm-env]").fill("prod");
    await dialog.getByLabel(/Break glass/).check();
    await dialog.locator("input[name=override-reason]").fill("hotfix for outage 123");
    await dialog.getByRole("button", { name: `Release v${v} now (break glass)` }).click();
    await expect(page.getByRole("dialog")).toHaveCount(0);
    await expect(page.getByTestId("serving-now")).toContainText(`STABLE v${v}`);
    const banner = page.getByTestId("override-banner");
    await expect(banner).toContainText("Break glass: admin applied release at once");
    await expect(banner).toContainText("hotfix for outage 123");
    // The admin who overrode cannot review it.
    await expect(banner.getByRole("button", { name: "Mark reviewed" })).toBeDisabled();
    await page.goto("/requests");
    await hydrated(page);
    await expect(page.getByTestId("override-banner")).toContainText("hotfix for outage 123");

    await as(page, releaser);
    await openConfig(page);
    await page.getByTestId("override-banner").getByRole("button", { name: "Mark reviewed" }).click();
    await expect(page.getByTestId("override-banner")).toHaveCount(0);
    await page.reload();
    await hydrated(page);
    await expect(page.getByTestId("override-banner")).toHaveCount(0);
    await page.goto("/requests");
    await hydrated(page);
    await expect(page.getByTestId("override-banner")).toHaveCount(0);
  } finally {
    await protect(api, 0);
  }
});

test("the governance pages fit a phone and pass axe @phone", async ({ page }) => {
  const api = await adminApi(page);
  const v = await save(api, 7);
  await protect(api, 1);
  try {
    const made = await api.post(`${base}/${key}/change-requests`, {
      data: { action: "release", body: { version: v }, message: "on a phone" },
    });
    expect(made.status()).toBe(201);
    const { id } = await made.json();
    await as(page, "admin");
    for (const path of ["/requests", "/requests?status=pending", `/requests/${id}`, "/admin/environments/prod", "/admin/environments", `/ns/${ns}/prod/${key}`]) {
      await page.goto(path);
      await hydrated(page);
      await expectAccessible(page, path);
      await expectNoSidewaysScroll(page, path);
    }
    expect((await api.post(`/api/v1/change-requests/${id}/withdraw`, { data: {} })).status()).toBe(200);
  } finally {
    await protect(api, 0);
  }
});
