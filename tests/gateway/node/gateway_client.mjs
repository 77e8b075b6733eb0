// Drives a running `dhi gateway` with the official openai npm package. Run by
// tests/gateway/gateway_fake_test.cpp (GatewayOpenAiClient):
//   node gateway_client.mjs GATEWAY_URL KEY EXPECTED_TEXT FLAKY_CONTROL_URL
// The alias "r" routes to a fake upstream that drops streams mid-way, then to
// one that works; EXPECTED_TEXT is the uninterrupted answer to the prompt
// below with max_tokens 12. Exits non-zero with the failed assertion on stderr.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [gwUrl, key, expected, flakyControl] = process.argv.slice(2);
const gw = new OpenAI({ baseURL: `${gwUrl}/v1`, apiKey: key, maxRetries: 0 });
const messages = [{ role: 'user', content: 'tell the client' }];
const drop = (k) => fetch(flakyControl, { method: 'POST', body: JSON.stringify({ drop_after: k, times: 1 }) });

const models = await gw.models.list();
assert.ok(models.data.map((m) => m.id).includes('r'));

// Non-streaming, through a mid-stream failover.
await drop(4);
const full = await gw.chat.completions.create({ model: 'r', messages, max_tokens: 12 });
assert.equal(full.choices[0].message.role, 'assistant');
assert.equal(full.choices[0].message.content, expected);
assert.equal(full.choices[0].finish_reason, 'length');
assert.equal(full.usage.completion_tokens, 12);
assert.equal(full.model, 'r');

// Streaming, through a mid-stream failover: one stream, one id, the same text.
await drop(7);
const stream = await gw.chat.completions.create({
  model: 'r', messages, max_tokens: 12, stream: true, stream_options: { include_usage: true },
});
let text = '', finish = null, usage = null;
const ids = new Set();
for await (const chunk of stream) {
  ids.add(chunk.id);
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.equal(text, expected);
assert.equal(ids.size, 1);
assert.equal(finish, 'length');
assert.equal(usage.completion_tokens, 12);

// Errors are the SDK's typed errors with the OpenAI error object.
const bad = new OpenAI({ baseURL: `${gwUrl}/v1`, apiKey: 'wrong-key', maxRetries: 0 });
await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
await assert.rejects(gw.chat.completions.create({ model: 'nothing', messages }),
  (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
const strict = new OpenAI({
  baseURL: `${gwUrl}/v1`, apiKey: key, maxRetries: 0, defaultHeaders: { 'X-DHI-Privacy': 'local' },
});
await assert.rejects(strict.chat.completions.create({ model: 'remote', messages }),
  (e) => e instanceof OpenAI.InternalServerError && e.status === 503 && e.code === 'no_allowed_backend');

console.log('all checks passed');
