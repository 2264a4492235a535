import { test, expect, signIn, hydrated, agent, expectAccessible, expectNoSidewaysScroll } from "./fixtures";

// Issue 29: the compare guard in the plan editor — every field labelled with its default, an
// error beside the field it is about, the plan's JSON view both ways, and "Test the query now"
// for the lane being drafted. This server has no --outbound-allow, so its Prometheus on loopback
// is refused by the outbound policy: the test shows that error, per population.
test("a compare guard is added, filled in, seen in the JSON view and tested now @phone", async ({ page, baseURL }, info) => {
  const ns = `cmp-${Date.now() % 1000000}`;
  await signIn(page);
  const api = page.request;
  expect((await api.post("/api/v1/namespaces", { data: { name: ns } })).status()).toBe(201);
  const base = `/api/v1/namespaces/${ns}/envs/staging/configs`;
  expect((await api.post(base, { data: { key: "app.json", format: "json", content: '{"pool": 10}\n' } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/release`, { data: { version: 1 } })).status()).toBe(201);
  expect((await api.post(`${base}/app.json/versions`, { data: { content: '{"pool": 20}\n', base_version: 1 } })).status()).toBe(201);
  const token = (await (await api.post("/api/v1/tokens", { data: { name: `sub-${ns}`, role: "subscriber" } })).json()).token;
  const closers = [
    await agent(baseURL!, token, ns, "staging", "sub-1"),
    await agent(baseURL!, token, ns, "staging", "sub-2"),
    await agent(baseURL!, token, ns, "staging", "sub-3"),
  ];
  try {
    await page.goto(`/ns/${ns}/staging/app.json`);
    await hydrated(page);
    await page.locator("select[name=lane-version]").selectOption("2");
    await page.locator("textarea[name=lane-targets]").fill("sub-1");
    await page.locator("select[name=plan-template]").selectOption("(custom)");
    const editor = page.getByTestId("plan-editor");
    await editor.getByRole("button", { name: "+ Compare guard" }).click();
    const card = editor.locator(".guard-card[data-kind=compare]");
    await expect(card).toContainText("Compare guard: the lane is not worse than stable");

    // The defaults, each in a labelled field.
    await expect(card.getByLabel("Label naming the instance")).toHaveValue("instance");
    await expect(card.getByLabel("Most times worse (ratio, ≥ 1)")).toHaveValue("1.2");
    await expect(card.getByLabel("Least instances per side")).toHaveValue("3");
    await expect(card.getByLabel("Confidence (0.5 to below 1)")).toHaveValue("0.95");
    await expect(card.getByLabel("Better is")).toHaveValue("lower_is_better");
    const test_button = card.getByRole("button", { name: "Test the query now" });
    await expect(test_button).toBeDisabled();

    // A query without {{instances}} is refused beside its field.
    await card.locator("input[name=guard-url]").fill("http://127.0.0.1:9");
    const query = card.locator("input[name=guard-query]");
    await query.fill("sum by (instance) (rate(errors_total[5m]))");
    await expect(query).toHaveAttribute("aria-invalid", "true");
    await expect(card.locator("label:has(input[name=guard-query]) .field-error")).toContainText("{{instances}}");
    await query.fill('sum by (instance) (rate(errors_total{instance=~"{{instances}}"}[5m]))');
    await expect(query).toHaveAttribute("aria-invalid", "false");
    await card.locator("input[name=guard-metric]").fill("error rate");
    await card.getByLabel("Better is").selectOption("higher_is_better");
    await card.locator("input[name=guard-max_delta]").fill("0.01");
    await expect(page.getByTestId("plan-errors")).toContainText("✓ The plan is valid.");
    await expect(card.locator(".hint")).toContainText("more than 1.2× stable's and worse by more than 0.01 (higher is better) with 95 % confidence");

    // The JSON view shows the guard with every default filled in, and applies an edit.
    await editor.locator("summary", { hasText: "Plan as JSON" }).click();
    const json = editor.locator("textarea[name=plan-json]");
    await expect(json).toHaveValue(/"kind": "compare"/);
    const text = await json.inputValue();
    const plan = JSON.parse(text);
    expect(plan.guards[0]).toMatchObject({
      kind: "compare", url: "http://127.0.0.1:9", direction: "higher_is_better", max_ratio: 1.2, max_delta: 0.01,
      min_instances_per_side: 3, confidence: 0.95, label: "instance", metric: "error rate", interval_secs: 30, failures: 2,
    });
    plan.guards[0].max_ratio = 1.5;
    plan.guards[0].label = "pod";
    await json.fill(JSON.stringify(plan, null, 2));
    await editor.getByRole("button", { name: "Apply JSON" }).click();
    await expect(card.getByLabel("Most times worse (ratio, ≥ 1)")).toHaveValue("1.5");
    await expect(card.getByLabel("Label naming the instance")).toHaveValue("pod");
    await expect(card.getByLabel("Better is")).toHaveValue("higher_is_better");

    // Test the query now: the lane (sub-1, its target) and stable; loopback is refused.
    await expect(test_button).toBeEnabled();
    await test_button.click();
    const result = card.getByTestId("compare-test");
    await expect(result.getByTestId("population-lane")).toContainText("Lane: ");
    await expect(result.getByTestId("population-stable")).toContainText("Stable: ");
    await expect(result).toContainText("outbound policy does not allow this address");
    await expect(result.getByTestId("compare-sentence")).toContainText("No comparison");

    await expectAccessible(page, "the plan editor with a tested compare guard");
    if (info.project.name === "phone") await expectNoSidewaysScroll(page, "the plan editor with a tested compare guard");
  } finally {
    closers.forEach((close) => close());
  }
});
