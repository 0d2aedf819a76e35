// Streams runs against a running assistantd with the npm `openai` SDK, the way its users do,
// and prints one JSON line of what the SDK saw. Driven by tests/api/test_node_sdk.py, which
// prepares the (scripted) assistants and threads and asserts on the output.
//
// Environment:
//   ASSISTANTD_BASE_URL            e.g. http://127.0.0.1:8000/v1
//   ASSISTANTD_API_KEY             an API key of the project that owns the ids below
//   ASSISTANTD_PLAIN_ASSISTANT_ID  an assistant whose next run answers with plain text
//   ASSISTANTD_PLAIN_THREAD_ID     a thread with a user message, for that run
//   ASSISTANTD_TOOL_ASSISTANT_ID   an assistant whose next run calls function tool(s), then
//                                  answers with text once the outputs are submitted
//   ASSISTANTD_TOOL_THREAD_ID      a thread with a user message, for that run
//   ASSISTANTD_TOOL_OUTPUT         the output submitted for every tool call
//
// Exits 0 when every SDK call succeeded and the SDK's own view is consistent (final runs,
// text deltas vs. final messages, tool calls vs. required_action); otherwise prints the same
// JSON line with an `errors` list (and `exception` if the SDK threw) and exits 1.

import OpenAI from 'openai';
import { VERSION } from 'openai/version';

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`missing environment variable ${name}`);
  }
  return value;
}

const result = { sdk_version: VERSION, node_version: process.version, errors: [] };

function check(ok, message) {
  if (!ok) {
    result.errors.push(message);
  }
}

function textOf(message) {
  return (message?.content ?? [])
    .filter((part) => part.type === 'text')
    .map((part) => part.text.value)
    .join('');
}

/** Attaches the listeners an application would use and records what they see. */
function record(stream) {
  const seen = {
    events: [],
    deltas: [],
    text_snapshot: null,
    text_done: [],
    tool_calls_created: [],
    tool_calls_done: [],
    run_steps_done: [],
  };
  stream
    .on('event', (e) => seen.events.push(e.event))
    .on('textDelta', (delta, snapshot) => {
      seen.deltas.push(delta.value);
      seen.text_snapshot = snapshot.value;
    })
    .on('textDone', (text) => seen.text_done.push(text.value))
    .on('toolCallCreated', (call) => seen.tool_calls_created.push(call.id))
    .on('toolCallDone', (call) =>
      seen.tool_calls_done.push({
        id: call.id,
        type: call.type,
        name: call.function?.name,
        arguments: call.function?.arguments,
      }),
    )
    .on('runStepDone', (step) =>
      seen.run_steps_done.push({ id: step.id, type: step.type, status: step.status }),
    );
  return seen;
}

function runSummary(run) {
  return {
    id: run.id,
    object: run.object,
    status: run.status,
    thread_id: run.thread_id,
    assistant_id: run.assistant_id,
    required_action: run.required_action ?? null,
    last_error: run.last_error ?? null,
    usage: run.usage ?? null,
  };
}

async function plain(client) {
  const threadId = env('ASSISTANTD_PLAIN_THREAD_ID');
  const stream = client.beta.threads.runs.stream(threadId, {
    assistant_id: env('ASSISTANTD_PLAIN_ASSISTANT_ID'),
  });
  const seen = record(stream);
  const run = await stream.finalRun();
  const messages = await stream.finalMessages();
  const stored = await client.beta.threads.messages.list(threadId, { run_id: run.id });
  const out = {
    ...seen,
    final_run: runSummary(run),
    final_messages: messages.map(textOf),
    stored_messages: stored.data.map(textOf),
  };
  const joined = seen.deltas.join('');
  check(run.status === 'completed', `plain: finalRun status ${run.status}, expected completed`);
  check(seen.deltas.length > 0, 'plain: no textDelta events');
  check(messages.length === 1, `plain: ${messages.length} final messages, expected 1`);
  check(textOf(messages[0]) === joined, 'plain: textDelta concatenation != final message text');
  check(seen.text_snapshot === joined, 'plain: textDelta snapshot != concatenation');
  check(textOf(stored.data[0]) === joined, 'plain: textDelta concatenation != stored message');
  return out;
}

async function tool(client) {
  const threadId = env('ASSISTANTD_TOOL_THREAD_ID');
  const output = env('ASSISTANTD_TOOL_OUTPUT');

  const first = client.beta.threads.runs.stream(threadId, {
    assistant_id: env('ASSISTANTD_TOOL_ASSISTANT_ID'),
  });
  const firstSeen = record(first);
  const paused = await first.finalRun();
  const steps = await first.finalRunSteps();
  const calls = paused.required_action?.submit_tool_outputs?.tool_calls ?? [];
  check(
    paused.status === 'requires_action',
    `tool: first finalRun status ${paused.status}, expected requires_action`,
  );
  check(calls.length > 0, 'tool: required_action has no tool calls');
  const required = calls.map((c) => ({
    id: c.id,
    type: c.type,
    name: c.function.name,
    arguments: c.function.arguments,
  }));
  check(
    JSON.stringify(firstSeen.tool_calls_created) === JSON.stringify(calls.map((c) => c.id)),
    'tool: toolCallCreated ids != required_action tool call ids',
  );
  check(
    JSON.stringify(firstSeen.tool_calls_done) === JSON.stringify(required),
    'tool: toolCallDone snapshots != required_action tool calls',
  );
  const stepCalls = steps.flatMap((s) =>
    s.step_details?.type === 'tool_calls' ? s.step_details.tool_calls : [],
  );
  check(
    JSON.stringify(stepCalls.map((c) => c.function?.arguments)) ===
      JSON.stringify(calls.map((c) => c.function.arguments)),
    'tool: run step snapshot arguments != required_action arguments',
  );

  // v5+ signature: the run id first, thread_id among the params.
  const second = client.beta.threads.runs.submitToolOutputsStream(paused.id, {
    thread_id: threadId,
    tool_outputs: calls.map((c) => ({ tool_call_id: c.id, output })),
  });
  const secondSeen = record(second);
  const done = await second.finalRun();
  const messages = await second.finalMessages();
  const stored = await client.beta.threads.messages.list(threadId, { run_id: done.id });
  const joined = secondSeen.deltas.join('');
  check(done.id === paused.id, 'tool: the continuation finished a different run');
  check(done.status === 'completed', `tool: continuation finalRun status ${done.status}`);
  check(secondSeen.deltas.length > 0, 'tool: no textDelta events in the continuation');
  check(messages.length === 1, `tool: ${messages.length} final messages, expected 1`);
  check(textOf(messages[0]) === joined, 'tool: textDelta concatenation != final message text');
  check(textOf(stored.data[0]) === joined, 'tool: textDelta concatenation != stored message');

  return {
    first: {
      ...firstSeen,
      final_run: runSummary(paused),
      required_tool_calls: required,
      run_steps: steps.map((s) => ({ id: s.id, type: s.type, status: s.status })),
    },
    second: {
      ...secondSeen,
      final_run: runSummary(done),
      final_messages: messages.map(textOf),
      stored_messages: stored.data.map(textOf),
    },
  };
}

let exitCode = 0;
try {
  const client = new OpenAI({
    baseURL: env('ASSISTANTD_BASE_URL'),
    apiKey: env('ASSISTANTD_API_KEY'),
    maxRetries: 0,
    timeout: 30_000,
  });
  result.plain = await plain(client);
  result.tool = await tool(client);
} catch (err) {
  result.exception = {
    name: err?.constructor?.name ?? typeof err,
    message: String(err?.message ?? err),
    status: err?.status ?? null,
    error: err?.error ?? null,
    stack: err?.stack ?? null,
  };
  exitCode = 1;
}
if (result.errors.length) {
  exitCode = 1;
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exitCode = exitCode;
