import { test, expect, signIn, hydrated, subscribe } from "./fixtures";

test("gray lane: selector at 30 %, preview, slider to 60 %, test a context, promote; a second lane aborted", async ({ page, baseURL }) => {
  const ns = `lanes-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/staging/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"pool": 10}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: '{"pool": 20}\n', base_version: 1 } })).status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `sub-${ns}`, role: "subscriber" } })).json()).token;

  const closers = [
    await subscribe(baseURL!, token, ns, "staging", "bj-1", "region=beijing"),
    await subscribe(baseURL!, token, ns, "staging", "bj-2", "region=beijing"),
    await subscribe(baseURL!, token, ns, "staging", "sh-1", "region=shanghai"),
  ];
  try {
    await page.goto(`/ns/${ns}/staging/app.json`);
    await hydrated(page);

    // The selector validates as you type and points at the error.
    const selector = page.locator("input[name=lane-selector]");
    await selector.fill("region=");
    await expect(page.locator(".selector-error")).toContainText("position 7");
    await expect(page.getByRole("button", { name: "Start lane" })).toBeDisabled();
    await selector.fill("region=beijing");
    await expect(page.locator(".selector-help")).toContainText("✓");

    // Weight 30 % via the number box; the preview counts connected instances.
    await page.locator("select[name=lane-version]").selectOption("2");
    const weight = page.getByLabel("Weight in percent");
    await weight.fill("30");
    await weight.press("Tab");
    await expect(page.getByTestId("lane-preview")).toContainText("of 3 connected instances");
    // Targets always match (when the selector does).
    await page.locator("textarea[name=lane-targets]").fill("bj-1");
    await expect(page.getByTestId("lane-preview")).toContainText(/matches [12] of 3 connected instances/);
    await expect(page.getByTestId("lane-preview")).toContainText("bj-1");
    await expect(page.getByTestId("lane-preview")).not.toContainText("sh-1");
    // The preview follows instances connecting and leaving, with nothing typed.
    const late = await subscribe(baseURL!, token, ns, "staging", "bj-3", "region=beijing");
    await expect(page.getByTestId("lane-preview")).toContainText("of 4 connected instances");
    late();
    await expect(page.getByTestId("lane-preview")).toContainText("of 3 connected instances");
    await page.getByRole("button", { name: "Start lane" }).click();
    const lane = page.getByTestId("active-lanes").locator("li.lane").first();
    await expect(lane).toContainText("GRAY v2 · 30% · region=beijing");
    // "Serving now" names the lane as the panel does, never as a draft.
    const laneId = await lane.getAttribute("data-lane");
    await expect(page.getByTestId("lanes-now")).toContainText(`lane ${laneId}: v2 to 30 % of region=beijing plus 1 target (bj-1)`);
    await expect(page.getByTestId("serving-now")).not.toContainText("DRAFT v2");

    // Move the slider to 60 % with the keyboard and apply.
    const slider = lane.getByRole("slider");
    await slider.focus();
    for (let i = 0; i < 30; i++) await slider.press("ArrowRight");
    await expect(slider).toHaveAttribute("aria-valuetext", /60 percent/);
    await lane.getByRole("button", { name: "Apply weight" }).click();
    await expect(page.getByTestId("active-lanes").locator("li.lane").first()).toContainText("GRAY v2 · 60%");

    // Test a context: a target in beijing gets the lane, shanghai gets stable.
    await page.getByText("Test a context").click();
    await page.locator("input[name=ctx-client-id]").fill("bj-1");
    await page.locator("input[name=ctx-labels]").fill("region=beijing");
    await page.getByRole("button", { name: "Which version does it get?" }).click();
    await expect(page.getByTestId("verdict")).toContainText("Gets v2");
    await page.locator("input[name=ctx-client-id]").fill("sh-1");
    await page.locator("input[name=ctx-labels]").fill("region=shanghai");
    await page.getByRole("button", { name: "Which version does it get?" }).click();
    await expect(page.getByTestId("verdict")).toContainText("Gets v1");
    await expect(page.getByTestId("verdict")).toContainText("✗ no match");

    // Promote (staging needs no typed confirmation).
    await page.getByTestId("active-lanes").getByRole("button", { name: "Promote…" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Promote lane" }).click();
    await expect(page.getByTestId("serving-now")).toContainText("STABLE v2");
    await expect(page.getByTestId("active-lanes")).toHaveCount(0);

    // A second lane, aborted.
    expect((await api.post(`${base}/app.json/versions`, { data: { content: '{"pool": 30}\n', base_version: 2 } })).status()).toBe(201);
    await page.reload();
    await hydrated(page);
    await page.locator("select[name=lane-version]").selectOption("3");
    await page.locator("input[name=lane-selector]").fill("region=shanghai");
    await page.getByRole("button", { name: "5%" }).click();
    await page.getByRole("button", { name: "Start lane" }).click();
    await expect(page.getByTestId("active-lanes")).toContainText("GRAY v3 · 5% · region=shanghai");
    await page.getByTestId("active-lanes").getByRole("button", { name: "Abort…" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Abort lane" }).click();
    await expect(page.getByTestId("active-lanes")).toHaveCount(0);
    await expect(page.locator(".closed-lanes")).toContainText("2 closed lane(s)");
    await expect(page.getByTestId("serving-now")).toContainText("STABLE v2");
  } finally {
    closers.forEach((close) => close());
  }
});

test("rollout progress counts a lane among the instances its selector makes eligible, live", async ({ page, baseURL }) => {
  const ns = `elig-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/staging/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"pool": 10}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: '{"pool": 20}\n', base_version: 1 } })).status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `sub-${ns}`, role: "subscriber" } })).json()).token;
  const closers = [
    await subscribe(baseURL!, token, ns, "staging", "bj-1", "region=beijing"),
    await subscribe(baseURL!, token, ns, "staging", "bj-2", "region=beijing"),
    await subscribe(baseURL!, token, ns, "staging", "bj-3", "region=beijing"),
    await subscribe(baseURL!, token, ns, "staging", "bj-4", "region=beijing"),
    await subscribe(baseURL!, token, ns, "staging", "sz-1", "region=shenzhen"),
  ];
  try {
    // At 0 % only the target is in: exactly one of the four beijing instances.
    const lane = await api.post(`${base}/app.json/lanes`, {
      data: { version: 2, selector: "region=beijing", targets: ["bj-1"], percentage: 0 },
    });
    expect(lane.status()).toBe(201);
    const id = (await lane.json()).id;
    await page.goto(`/ns/${ns}/staging/app.json`);
    await hydrated(page);
    const rollout = page.getByTestId("rollout");
    await expect(rollout).toContainText(`1 instance(s) run lane ${id} (v2): 1 of 4 eligible instances (25 %), target 0 %`);
    await expect(rollout).toContainText("4 instance(s) run stable v1");
    await expect(rollout).not.toContainText("observed");
    // Another eligible instance connects: the server counts again, no reload.
    closers.push(await subscribe(baseURL!, token, ns, "staging", "bj-5", "region=beijing"));
    await expect(rollout).toContainText(`1 instance(s) run lane ${id} (v2): 1 of 5 eligible instances (20 %), target 0 %`);
    await expect(rollout).toContainText("5 instance(s) run stable v1");
  } finally {
    closers.forEach((close) => close());
  }
});
