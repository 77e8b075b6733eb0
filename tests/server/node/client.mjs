// Drives a running `dhi serve` with the official openai npm package, the way
// applications use it. Run by tests/server/server_node_test.cpp:
//   node client.mjs R1_URL R1_KEY R1_MODEL STORIES_URL STORIES_MODEL
// Exits non-zero, with the failed assertion on stderr, if anything differs.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [r1Url, r1Key, r1Model, storiesUrl, storiesModel] = process.argv.slice(2);
const r1 = new OpenAI({ baseURL: `${r1Url}/v1`, apiKey: r1Key, maxRetries: 0 });
const stories = new OpenAI({ baseURL: `${storiesUrl}/v1`, apiKey: 'unused', maxRetries: 0 });

const messages = (text) => [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: text },
];

// Models list.
const models = await r1.models.list();
assert.deepEqual(models.data.map((m) => m.id), [r1Model]);

// Non-streaming chat: R1 thinking goes to reasoning_content, usage counts it.
const full = await r1.chat.completions.create({
  model: r1Model, messages: messages('What is 2+2?'), max_tokens: 12, temperature: 0,
});
const msg = full.choices[0].message;
assert.equal(msg.role, 'assistant');
assert.equal(full.choices[0].finish_reason, 'length');
assert.equal(full.usage.completion_tokens, 12);
assert.equal(full.usage.total_tokens, full.usage.prompt_tokens + 12);
const reasoning = msg.reasoning_content ?? '';
assert.ok(reasoning.length + msg.content.length > 0, 'some text came back');
if (reasoning.length > 0) assert.ok(full.usage.completion_tokens_details.reasoning_tokens > 0);

// Streaming chat gives the same text (greedy), split the same way.
const stream = await r1.chat.completions.create({
  model: r1Model, messages: messages('What is 2+2?'), max_tokens: 12, temperature: 0,
  stream: true, stream_options: { include_usage: true },
});
let sContent = '', sReasoning = '', finish = null, usage = null, role = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta.role) role = c.delta.role;
    sContent += c.delta.content ?? '';
    sReasoning += c.delta.reasoning_content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.equal(role, 'assistant');
assert.equal(sContent, msg.content);
assert.equal(sReasoning, reasoning);
assert.equal(finish, 'length');
assert.equal(usage.completion_tokens, 12);

// The split turned off: the raw text, the opened <think> block included.
const raw = await r1.chat.completions.create({
  model: r1Model, messages: messages('What is 2+2?'), max_tokens: 12, temperature: 0,
  reasoning_format: 'none',
});
assert.equal(raw.choices[0].message.reasoning_content, undefined);
assert.ok(raw.choices[0].message.content.startsWith('<think>\n'));

// Logprobs.
const lp = await r1.chat.completions.create({
  model: r1Model, messages: messages('Hi'), max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3,
});
assert.equal(lp.choices[0].logprobs.content.length, 4);
for (const t of lp.choices[0].logprobs.content) {
  assert.equal(t.top_logprobs.length, 3);
  assert.ok(t.logprob <= 0);
  assert.equal(t.top_logprobs[0].logprob, t.logprob);  // greedy takes the most likely
}

// Errors surface as the SDK's typed errors with the OpenAI error object.
const bad = new OpenAI({ baseURL: `${r1Url}/v1`, apiKey: 'wrong-key', maxRetries: 0 });
await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
await assert.rejects(
  r1.chat.completions.create({ model: 'no-such-model', messages: messages('x') }),
  (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
await assert.rejects(
  r1.chat.completions.create({ model: r1Model, messages: messages('x'), temperature: 'hot' }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');

// Eight concurrent streaming clients each get what they get alone (greedy).
const prompts = ['Once upon a time', 'The cat sat', 'Lily wanted to', 'One day, a big dog',
  'Tom and Sue went to the park', 'The sun', 'A little bird said', 'Mom made a cake'];
const streamed = async (prompt) => {
  const s = await stories.completions.create({
    model: storiesModel, prompt, max_tokens: 32, temperature: 0, stream: true,
  });
  let text = '';
  for await (const chunk of s) text += chunk.choices[0]?.text ?? '';
  return text;
};
const alone = [];
for (const p of prompts) alone.push(await streamed(p));
const together = await Promise.all(prompts.map(streamed));
assert.deepEqual(together, alone);
for (const t of alone) assert.ok(t.length > 0);

// A non-streaming completion equals the streamed one.
const one = await stories.completions.create({ model: storiesModel, prompt: prompts[0], max_tokens: 32, temperature: 0 });
assert.equal(one.choices[0].text, alone[0]);
assert.equal(one.object, 'text_completion');

console.log('openai npm client: all checks passed');
