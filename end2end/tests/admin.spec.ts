import { test, expect, signIn, hydrated } from "./fixtures";

test("an admin creates a user, limits it to an environment and disables it", async ({ page }) => {
  await signIn(page);
  await page.getByRole("link", { name: "Users" }).click();
  await expect(page.getByRole("heading", { name: "Users" })).toBeVisible();
  await hydrated(page);
  const name = `carol${Date.now() % 100000}`;
  await page.getByLabel("Username", { exact: true }).fill(name);
  await page.getByLabel("Password", { exact: true }).fill("carol-password");
  await page.locator("select[name=new-role]").selectOption("editor");
  await page.getByRole("button", { name: "Add user" }).click();
  const row = page.locator(`tr[data-user="${name}"]`);
  await expect(row).toBeVisible();
  await expect(row.locator("select[name=role]")).toHaveValue("editor");
  await row.locator("select[name=env]").selectOption("staging");
  // A change in the table is sent only by the row's Save.
  await row.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("user-saved")).toHaveText(`✓ ${name} is limited to staging`);
  await expect(row.locator("select[name=env]")).toHaveValue("staging");
  await row.getByRole("button", { name: "Disable" }).click();
  await expect(row.getByText("disabled")).toBeVisible();
});

test("an admin creates a token, sees the secret once, and revokes it", async ({ page }) => {
  await signIn(page);
  await page.getByRole("link", { name: "Tokens" }).click();
  await expect(page.getByRole("heading", { name: "API tokens" })).toBeVisible();
  await hydrated(page);
  const name = `ci-${Date.now() % 100000}`;
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.locator("select[name=token-role]").selectOption("releaser");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = page.getByTestId("token-secret");
  await expect(secret).toHaveText(/^gc_[A-Za-z0-9]{40}$/);
  const row = page.locator(`tr[data-token="${name}"]`);
  await expect(row).toBeVisible();
  await row.getByRole("button", { name: "Revoke…" }).click();
  await row.getByRole("button", { name: "Revoke token" }).click();
  await expect(row.getByText("revoked")).toBeVisible();
});

test("an admin adds an environment; a duplicate is refused", async ({ page }) => {
  await signIn(page);
  await page.getByRole("link", { name: "Environments" }).click();
  await expect(page.getByRole("heading", { name: "Environments" })).toBeVisible();
  await hydrated(page);
  const name = `qa${Date.now() % 100000}`;
  await page.locator("input[name=environment-name]").fill(name);
  await page.getByRole("button", { name: "Add environment" }).click();
  await expect(page.locator(`tr[data-environment="${name}"]`)).toBeVisible();
  await page.locator("input[name=environment-name]").fill("prod");
  await page.getByRole("button", { name: "Add environment" }).click();
  await expect(page.getByRole("alert")).toContainText("already exists");
});

test("an admin limited to an environment sees tokens but not users or environments", async ({ page }) => {
  await signIn(page);
  const name = `lim${Date.now() % 100000}`;
  const created = await page.request.post("/api/v1/users", {
    data: { username: name, password: `${name}-password`, role: "admin", env: "staging" },
  });
  expect(created.status()).toBe(201);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await signIn(page, name, `${name}-password`);
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Tokens" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Users" })).toHaveCount(0);
  await expect(nav.getByRole("link", { name: "Environments" })).toHaveCount(0);
});
