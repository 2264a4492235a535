import { test, expect, signIn, hydrated } from "./fixtures";
import type { Page } from "@playwright/test";

async function setUp(page: Page, prefix: string, env = "staging") {
  const ns = `${prefix}-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/${env}/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"pool": 1}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  for (const v of [2, 3, 4]) {
    const saved = await api.post(`${base}/app.json/versions`, { data: { content: `{"pool": ${v}}\n`, base_version: v - 1 } });
    expect(saved.status()).toBe(201);
  }
  return { ns, base, api };
}

test("the config list and the version history say what is live: lanes, plans, aborted lanes", async ({ page }) => {
  const { ns, base, api } = await setUp(page, "live");
  // v2 was served by two lanes, both aborted; v3 is in a lane with a plan now; v4 never left the editor.
  for (let i = 0; i < 2; i++) {
    const lane = await api.post(`${base}/app.json/lanes`, { data: { version: 2, percentage: 5 } });
    expect(lane.status()).toBe(201);
    const id = (await lane.json()).id;
    expect((await api.post(`${base}/app.json/lanes/${id}/abort`, { data: {} })).status()).toBe(200);
  }
  const lane = await api.post(`${base}/app.json/lanes`, {
    data: { version: 3, selector: "region=beijing", plan: { steps: [{ percentage: 10, hold_secs: 600 }, { percentage: 50, hold_secs: 600 }], guards: [{ kind: "reports" }] } },
  });
  expect(lane.status(), await lane.text()).toBe(201);
  const id = (await lane.json()).id;

  await page.goto(`/ns/${ns}/staging`);
  await hydrated(page);
  const serving = page.locator('tr[data-config="app.json"]').getByTestId("serving");
  await expect(serving).toContainText("STABLE v1");
  await expect(serving).toContainText("GRAY v3 · 10 % · region=beijing");
  await expect(serving.locator("[data-plan]")).toHaveText("▶ plan step 1 of 2, running");
  expect((await api.post(`${base}/app.json/lanes/${id}/plan/pause`, { data: {} })).status()).toBe(200);
  await page.reload();
  await hydrated(page);
  await expect(serving.locator("[data-plan]")).toHaveText("⏸ plan paused at step 1 of 2");

  await page.goto(`/ns/${ns}/staging/app.json`);
  await hydrated(page);
  const row = (v: number) => page.locator(`tr[data-version='${v}']`);
  await expect(row(4)).toContainText("never released");
  await expect(row(3)).toContainText(`in lane ${id} at 10 %`);
  await expect(row(2).locator("[data-state=was-in-lanes]")).toHaveText(/^was in lane \d+ \(aborted \d{4}-\d\d-\d\d \d\d:\d\d\), lane \d+ \(aborted /);
  await expect(row(2)).not.toContainText("never released");
  await expect(row(1)).toContainText("STABLE v1");
});

test("a lane's plan ending shows a notice with date and time, once", async ({ page }) => {
  const { ns, base, api } = await setUp(page, "notice");
  const lane = await api.post(`${base}/app.json/lanes`, {
    data: { version: 2, plan: { steps: [{ percentage: 10, hold_secs: 600 }], guards: [{ kind: "reports" }] } },
  });
  expect(lane.status(), await lane.text()).toBe(201);
  const id = (await lane.json()).id;
  await page.goto(`/ns/${ns}/staging/app.json`);
  await hydrated(page);
  await expect(page.getByTestId("notices").locator(".notice")).toHaveCount(0);
  // Someone else aborts it: the page hears of it live.
  expect((await api.post(`${base}/app.json/lanes/${id}/abort`, { data: { message: "not today" } })).status()).toBe(200);
  const notice = page.getByTestId("notices").locator(".notice");
  await expect(notice).toHaveCount(1);
  await expect(notice).toContainText(new RegExp(`Lane ${id} \\(v2\\) was aborted on \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC`));
  await notice.getByRole("button", { name: "Dismiss this notice" }).click();
  await expect(notice).toHaveCount(0);
  // Loaded again, what happened before is not news.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("notices").locator(".notice")).toHaveCount(0);
});

test("the smaller findings: create form, namespace link, save reason, whitespace checkbox", async ({ page }) => {
  const { ns } = await setUp(page, "small", "prod");
  // The namespace link opens the environment that has its configs.
  await page.goto("/");
  await hydrated(page);
  await expect(page.locator(`tr[data-namespace="${ns}"] td`).first().getByRole("link")).toHaveAttribute("href", `/ns/${ns}/prod`);

  // Nothing typed yet: no parse error, and Create says why it waits.
  await page.goto(`/ns/${ns}/dev`);
  await hydrated(page);
  await expect(page.locator("#editor-error")).toHaveText("");
  await expect(page.getByRole("button", { name: "Create config (version 1)" })).toBeDisabled();
  await expect(page.getByTestId("create-reason")).toHaveText("Type the content of version 1 first.");
  await page.locator("textarea[name=content]").fill("{");
  await expect(page.locator("#editor-error")).toContainText("EOF while parsing");

  // Save's reason is on the page, tied to the button.
  await page.goto(`/ns/${ns}/prod/app.json`);
  await hydrated(page);
  const save = page.getByRole("button", { name: "Save version" });
  await expect(save).toBeDisabled();
  await expect(save).toHaveAttribute("aria-describedby", "save-reason");
  await expect(page.locator("#save-reason")).toBeVisible();
  await expect(page.locator("#save-reason")).toHaveText("No changes to save.");

  // The whitespace checkbox sits on the line of its words.
  await page.goto(`/ns/${ns}/prod/app.json/diff?from=1&to=2`);
  await hydrated(page);
  const box = await page.locator("input[name=hide-whitespace]").boundingBox();
  const label = await page.locator("label.check").boundingBox();
  expect(box && label).toBeTruthy();
  expect(label!.height).toBeLessThan(box!.height * 2);
});

test("signed out, a protected page sends to sign-in and back to it afterwards, never to another site", async ({ page }) => {
  await signIn(page);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/admin/users?x=1");
  await expect(page).toHaveURL(/\/login\?next=%2Fadmin%2Fusers%3Fx%3D1$/);
  await hydrated(page);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(process.env.GRAYCAST_ADMIN_PASSWORD ?? "e2e-admin-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/admin\/users\?x=1$/);
  await expect(page.getByRole("heading", { name: "Users", level: 1 })).toBeVisible();

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/login?next=%2F%2Fevil.example%2F");
  await hydrated(page);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(process.env.GRAYCAST_ADMIN_PASSWORD ?? "e2e-admin-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Namespaces", level: 1 })).toBeVisible();
  await expect(page).toHaveURL(/\/$/);
});
