// Evaluates one graycast config through the OpenFeature server SDK and its
// OFREP provider, as any Node service would (tests/api/ofrep/node.rs runs it).
//
//   node evaluate.mjs <base-url> <token> <namespace> <env> <key> < contexts.jsonl
//
// stdin: one JSON evaluation context per line ({"targetingKey": "…", …});
// stdout: one JSON result per context, written as soon as it is evaluated (a
// test may release between two lines: one process, one provider).
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { createInterface } from 'node:readline';

const [baseUrl, token, namespace, env, key] = process.argv.slice(2);
if (!key) {
  console.error('usage: node evaluate.mjs <base-url> <token> <namespace> <env> <key> < contexts.jsonl');
  process.exit(2);
}

await OpenFeature.setProviderAndWait(
  new OFREPProvider({
    baseUrl,
    // Evaluated before every request: the scope headers ride along with the token.
    headersFactory: () => ({
      Authorization: `Bearer ${token}`,
      'X-Graycast-Namespace': namespace,
      'X-Graycast-Env': env,
    }),
  }),
);
const client = OpenFeature.getClient();

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const context = JSON.parse(line);
  const details = await client.getObjectDetails(key, { default: true }, context);
  console.log(
    JSON.stringify({
      value: details.value,
      variant: details.variant ?? null,
      reason: details.reason ?? null,
      errorCode: details.errorCode ?? null,
      metadata: details.flagMetadata ?? {},
    }),
  );
}
await OpenFeature.close();
