// OIDC mode: users log in through the identity provider's form and the Web UI
// calls the frontend with their own access tokens, so the policy decides per
// user:
//   reader (default:read)            sees default's workflows; Terminate is denied
//                                    with the policy's reason; logs out
//   writer (default:read,write)      terminates the workflow
//   other  (other:read,other:write)  lands on the namespace page, not the login
//                                    page; does not see default nor its workflows;
//                                    sees other's
//
// UI_URL, WORKFLOW_ID (running, in default), OTHER_WORKFLOW_ID (in other), OUT_DIR
import { env, expect, newUser, run, step, waitAPI } from './lib.mjs';

const ui = env.UI_URL;

async function login(user) {
  await step(user, 'log in through the identity provider', async (page) => {
    await page.goto(ui);
    await page.getByTestId('login-button').click();
    await page.locator('input[name=login]').fill(user.name);
    await page.locator('input[name=password]').fill('any password');
    await page.locator('button[type=submit]').click();
    // Consent (first login of this browser profile).
    const consent = page.getByRole('button', { name: 'Continue' });
    await consent.waitFor({ timeout: 5000 }).then(() => consent.click(), () => {});
    // The UI moves the tokens from ui-server's cookies to its AuthUser store.
    await page.waitForFunction(() => JSON.parse(localStorage.getItem('AuthUser') ?? '{}').accessToken);
    await page.waitForURL((u) => u.toString().startsWith(ui) && /^\/namespaces\/|^\/select-namespace/.test(u.pathname));
  });
}

async function openWorkflow(user, ns, id) {
  await step(user, `open workflow ${id}`, async (page) => {
    await page.goto(`${ui}/namespaces/${ns}/workflows`);
    await page.getByRole('link', { name: id }).first().click();
    await page.waitForURL(new RegExp(`/workflows/${id}/`));
  });
}

// terminate clicks More actions > Terminate > Terminate and returns the API response.
async function terminate(page) {
  await page.getByRole('button', { name: 'More actions' }).click();
  await page.locator('[data-testid="terminate-button"]:visible').first().click();
  // The page renders the actions twice (wide and narrow layouts): use the visible ones.
  const modal = page.locator('#terminate-confirmation-modal:visible');
  await modal.locator('#workflow-termination-reason').fill('browser test');
  const response = waitAPI(page, 'POST', /\/terminate$/);
  await modal.getByRole('button', { name: 'Terminate' }).click();
  const r = await response;
  return { modal, status: r.status(), body: await r.text() };
}

await run(async () => {
  // reader: sees the list, Terminate is denied with the policy's reason.
  const reader = await newUser('reader');
  try {
    await login(reader);
    await step(reader, 'sees default workflows', async (page) => {
      await page.waitForURL(/\/namespaces\/default\/workflows/);
      await page.getByRole('link', { name: env.WORKFLOW_ID }).first().waitFor();
    });
    await openWorkflow(reader, 'default', env.WORKFLOW_ID);
    await step(reader, 'Terminate is denied with the policy reason', async (page) => {
      const { modal, status, body } = await terminate(page);
      expect(status === 403, `terminate answered ${status}, want 403: ${body}`);
      const want = 'TerminateWorkflowExecution in namespace "default" requires write; caller has read';
      const reasons = (JSON.parse(body).details ?? []).map((d) => d.reason);
      expect(reasons.includes(want), `the 403 body lacks the policy reason ${JSON.stringify(want)}: ${body}`);
      await modal.getByText('Request unauthorized').first().waitFor();
      expect(!page.url().includes('/login'), 'sent to the login page after a denied terminate');
    });
    await step(reader, 'log out', async (page) => {
      await page.keyboard.press('Escape');
      await page.getByTestId('user-menu-trigger').click();
      await page.getByText('Log out').first().click();
      await page.waitForURL(/\/login/);
      await page.getByTestId('login-button').waitFor();
      const stored = await page.evaluate(() => localStorage.getItem('AuthUser'));
      expect(!stored || !JSON.parse(stored).accessToken, `access token left after logout: ${stored ? 'present' : ''}`);
    });
  } finally {
    await reader.context.close();
  }

  // writer: terminates it.
  const writer = await newUser('writer');
  try {
    await login(writer);
    await openWorkflow(writer, 'default', env.WORKFLOW_ID);
    await step(writer, 'Terminate succeeds', async (page) => {
      const { status, body } = await terminate(page);
      expect(status === 200, `terminate answered ${status}, want 200: ${body}`);
      await page.getByText('Terminated').first().waitFor();
    });
  } finally {
    await writer.context.close();
  }

  // other: no access to default, full access to other.
  const other = await newUser('other');
  try {
    await login(other);
    await step(other, 'does not see default workflows', async (page) => {
      await page.waitForLoadState('networkidle');
      const denied = other.api.find((r) => /^\/api\/v1\/namespaces\/default\/workflows$/.test(r.path));
      expect(denied && denied.status === 403, `default's workflow list: ${JSON.stringify(denied)}, want a 403`);
      expect(await page.getByText(env.WORKFLOW_ID).count() === 0, `default's workflow ${env.WORKFLOW_ID} is shown`);
    });
    await step(other, 'the namespace list shows other, not default', async (page) => {
      await page.goto(`${ui}/namespaces`);
      await page.getByRole('link', { name: 'other', exact: true }).first().waitFor();
      expect(await page.getByRole('link', { name: 'default', exact: true }).count() === 0, 'default is listed');
    });
    await step(other, 'sees other workflows', async (page) => {
      await page.goto(`${ui}/namespaces/other/workflows`);
      await page.getByRole('link', { name: env.OTHER_WORKFLOW_ID }).first().waitFor();
      expect(await page.getByText(env.WORKFLOW_ID).count() === 0, `default's workflow ${env.WORKFLOW_ID} is shown`);
    });
  } finally {
    await other.context.close();
  }
});
