import { test, expect, signIn, hydrated, agent } from "./fixtures";
import type { Page } from "@playwright/test";

async function setUp(page: Page, prefix: string) {
  const ns = `${prefix}-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/staging/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"pool": 10}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: '{"pool": 20}\n', base_version: 1 } })).status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `sub-${ns}`, role: "subscriber" } })).json()).token;
  return { ns, base, token };
}

/** Fills the plan editor: custom steps with the given percentages, 1 s holds, a reports guard. */
async function customPlan(page: Page, percentages: string[]) {
  await page.locator("select[name=plan-template]").selectOption("(custom)");
  const editor = page.getByTestId("plan-editor");
  for (let i = 1; i < percentages.length; i++) await editor.getByRole("button", { name: "+ Add a step" }).click();
  for (const [i, pct] of percentages.entries()) {
    await editor.locator("input[name=plan-step-percentage]").nth(i).fill(pct);
    await editor.locator("input[name=plan-step-hold]").nth(i).fill("1 s");
  }
  await editor.getByRole("button", { name: "+ Reports guard" }).click();
}

test("a plan started in the browser walks its steps with two subscribers reporting and promotes, live", async ({ page, baseURL }) => {
  const { ns, token } = await setUp(page, "plan");
  const closers = [
    await agent(baseURL!, token, ns, "staging", "sub-1"),
    await agent(baseURL!, token, ns, "staging", "sub-2"),
  ];
  try {
    await page.goto(`/ns/${ns}/staging/app.json`);
    await hydrated(page);
    await page.locator("select[name=lane-version]").selectOption("2");
    // Both subscribers are targets: in the lane from its first step, whatever the bucket.
    await page.locator("textarea[name=lane-targets]").fill("sub-1\nsub-2");
    await customPlan(page, ["10", "50", "100"]);

    // The editor checks the plan with the server's rules and names the field.
    const editor = page.getByTestId("plan-editor");
    await editor.locator("input[name=plan-step-percentage]").nth(1).fill("5");
    await expect(page.getByTestId("plan-errors")).toContainText("step 2 percentage: percentages must increase from step to step; 5 % follows 10 %");
    await expect(page.getByRole("button", { name: "Start lane" })).toBeDisabled();
    await editor.locator("input[name=plan-step-hold]").nth(0).fill("10 weeks");
    await expect(editor.locator(".plan-step").nth(0)).toContainText("unknown unit");
    await editor.locator("input[name=plan-step-hold]").nth(0).fill("1 s");
    await editor.locator("input[name=plan-step-percentage]").nth(1).fill("50");
    await expect(page.getByTestId("plan-errors")).toContainText("✓ The plan is valid.");
    await editor.locator("input[name=plan-finish][value=promote]").check();

    // The blast radius of every step, before start.
    const reach = editor.getByTestId("step-reach");
    // Both are targets, so in from step 1.
    await expect(reach.nth(0)).toContainText("step 1: ~2 of 2 connected instances");
    await expect(reach.nth(2)).toContainText("step 3: ~2 of 2 connected instances");
    await expect(editor.locator(".guard-card")).toContainText("Fails as soon as more than 0 instance(s)");

    await page.getByRole("button", { name: "Start lane" }).click();
    // The timeline appears on the lane's card, then the plan walks to 100 % and promotes:
    // no reload, the page follows the live feed.
    await expect(page.getByTestId("plan-timeline")).toBeVisible();
    await expect(page.getByTestId("plan-timeline").locator("li[data-step]")).toHaveCount(3);
    await expect(page.getByTestId("serving-now")).toContainText("STABLE v2", { timeout: 30_000 });
    await expect(page.getByTestId("active-lanes")).toHaveCount(0);
    await expect(page.locator(".closed-lanes")).toContainText("1 closed lane(s)");
    // It went all the way: the promoted lane stands at the last step's 100 %.
    await expect(page.locator(".closed-lanes li")).toContainText("promoted");
    await expect(page.locator(".closed-lanes li")).toContainText("v2 · 100%");
    await expect(page.getByTestId("abort-banner")).toHaveCount(0);
  } finally {
    closers.forEach((close) => close());
  }
});

test("a failed report aborts the plan's lane and a red banner says why, live, until dismissed", async ({ page, baseURL }) => {
  const { ns, token } = await setUp(page, "abort");
  const closers = [
    await agent(baseURL!, token, ns, "staging", "sub-1"),
    await agent(baseURL!, token, ns, "staging", "sub-2", (v) => v === 2),
  ];
  try {
    await page.goto(`/ns/${ns}/staging/app.json`);
    await hydrated(page);
    await page.locator("select[name=lane-version]").selectOption("2");
    await page.locator("textarea[name=lane-targets]").fill("sub-1\nsub-2");
    await customPlan(page, ["10", "100"]);
    // A long hold: the abort must not wait for it.
    await page.getByTestId("plan-editor").locator("input[name=plan-step-hold]").nth(0).fill("10 min");
    await page.getByRole("button", { name: "Start lane" }).click();

    const banner = page.getByTestId("abort-banner");
    await expect(banner).toContainText(/graycast aborted lane \d+ \(v2\) at \d{4}-\d\d-\d\d \d\d:\d\d UTC:/, { timeout: 20_000 });
    await expect(banner).toContainText("sub-2");
    await expect(banner).toContainText("unknown directive");
    await expect(banner.getByRole("link", { name: "Failing instances" })).toHaveAttribute("href", `/instances/${ns}/staging?tab=failed&key=app.json`);
    await expect(banner.getByRole("link", { name: "Audit entry" })).toHaveAttribute("href", /action=rollout\.abort/);
    await expect(page.getByTestId("active-lanes")).toHaveCount(0);
    await expect(page.getByTestId("serving-now")).toContainText("STABLE v1");

    // Dismissed, it stays dismissed (also after a reload).
    await banner.getByRole("button", { name: /Dismiss/ }).click();
    await expect(page.getByTestId("abort-banner")).toHaveCount(0);
    await page.reload();
    await hydrated(page);
    await expect(page.locator(".abort-banners")).toHaveAttribute("data-ready", "true");
    await expect(page.getByTestId("abort-banner")).toHaveCount(0);
  } finally {
    closers.forEach((close) => close());
  }
});

test("the plan editor flags a lane no instance will run, explains user_id stickiness, asks for evidence, and keeps a webhook's quoting", async ({ page, baseURL }) => {
  const { ns, token, base } = await setUp(page, "evidence");
  // A template with a quoting webhook guard (polled rarely: it only has to survive the editor).
  const hook = { kind: "webhook", url: "http://127.0.0.1:9/hook", interval_secs: 3600, failures: 100, quote_body: true };
  const template = `quoting-${ns}`;
  const made = await page.request.post("/api/v1/rollout-templates?env=staging", {
    data: { name: template, plan: { steps: [{ percentage: 10, hold_secs: 3600 }, { percentage: 100 }], guards: [{ kind: "reports" }, hook], finish: "promote" } },
  });
  expect(made.status()).toBe(201);
  const close = await agent(baseURL!, token, ns, "staging", "sub-1");
  try {
    await page.goto(`/ns/${ns}/staging/app.json`);
    await hydrated(page);
    await page.locator("select[name=lane-version]").selectOption("2");
    await page.locator("select[name=plan-template]").selectOption("canary");
    const editor = page.getByTestId("plan-editor");
    const warnings = page.getByTestId("plan-warnings");
    // The built-in canary carries the reports guard.
    await expect(editor.locator(".guard-card[data-kind=reports]")).toHaveCount(1);
    await expect(page.getByTestId("plan-errors")).toContainText("✓ The plan is valid.");
    await expect(editor.getByTestId("step-reach").nth(0)).toContainText("of 1 connected instances");
    await expect(warnings).toHaveCount(0);

    // A selector no connected instance matches: flagged before start.
    await page.locator("input[name=lane-selector]").fill("region=shanghai");
    await expect(warnings).toContainText("This lane matches none of the 1 connected instances");
    await expect(warnings).toContainText("the plan gets no evidence and will not promote by itself");

    // Sticky on user_id: subscribers are not users.
    await page.locator("input[name=lane-selector]").fill("");
    await page.locator("select[name=lane-stickiness]").selectOption("user_id");
    await expect(warnings).toContainText("subscribers send no user id: this lane only affects per-request resolve and OFREP");
    await expect(warnings).toContainText("This lane matches none of the 1 connected instances");
    await page.locator("select[name=lane-stickiness]").selectOption("client_id");
    await expect(warnings).toHaveCount(0);

    // Promoting without the reports guard: the server's sentence beside the guards, no start.
    await editor.getByRole("button", { name: "Remove guard 1" }).click();
    const refusal = 'a plan that finishes by promoting needs a reports guard with min_instances of at least 1: add {"kind":"reports"} to guards, or finish with "hold"';
    await expect(editor.getByTestId("guards-error")).toContainText(refusal);
    await expect(page.getByRole("button", { name: "Start lane" })).toBeDisabled();
    await editor.locator("input[name=plan-finish][value=hold]").check();
    await expect(editor.getByTestId("guards-error")).not.toContainText(refusal);
    await expect(page.getByRole("button", { name: "Start lane" })).toBeEnabled();

    // A template's webhook keeps quote_body through the editor: the lane starts from it by name.
    await page.locator("select[name=plan-template]").selectOption(template);
    await expect(editor.locator("input[name=guard-quote_body]")).toBeChecked();
    await expect(editor.locator(".guard-card[data-kind=webhook]")).toContainText("A failing answer's first line is quoted in the reason.");
    await page.getByRole("button", { name: "Start lane" }).click();
    await expect(page.getByTestId("plan-timeline")).toBeVisible();
    const lanes = await (await page.request.get(`${base}/app.json/lanes`)).json();
    expect(lanes[0].plan.template).toBe(template);
    const plan = await (await page.request.get(`${base}/app.json/lanes/${lanes[0].id}/plan`)).json();
    expect(plan.plan.guards[1].quote_body).toBe(true);
  } finally {
    close();
  }
});
