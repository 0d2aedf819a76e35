// The Assistants quickstart with the npm `openai` SDK, as its users write it: createAndPoll,
// createAndRunPoll, a streamed run with .on('textDelta'), a streamed function call answered
// with submitToolOutputsStream, and one answered with submitToolOutputsAndPoll.
// The client reads OPENAI_BASE_URL and OPENAI_API_KEY from the environment.
// Run by tests/clients/test_node_sdk.py.

import OpenAI from 'openai';

const client = new OpenAI();

// 1. createAndPoll
const tutor = await client.beta.assistants.create({
  name: 'Math Tutor',
  instructions: 'You are a personal math tutor. Answer math questions briefly.',
  model: 'gpt-4o',
});
const thread = await client.beta.threads.create();
console.log('thread:', thread.id);
await client.beta.threads.messages.create(thread.id, {
  role: 'user',
  content: 'I need to solve the equation `3x + 11 = 14`. Can you help me?',
});
let run = await client.beta.threads.runs.createAndPoll(thread.id, { assistant_id: tutor.id });
console.log('run:', run.id, run.status);
if (run.status === 'completed') {
  const messages = await client.beta.threads.messages.list(thread.id, { run_id: run.id });
  for (const message of messages.data.reverse()) {
    console.log(`${message.role}: ${message.content[0].text.value}`);
  }
}

// 2. createAndRunPoll
run = await client.beta.threads.createAndRunPoll({
  assistant_id: tutor.id,
  thread: { messages: [{ role: 'user', content: 'What is 7 times 6?' }] },
});
console.log('second run:', run.id, run.status);
for await (const message of client.beta.threads.messages.list(run.thread_id, { order: 'asc' })) {
  console.log(`${message.role}: ${message.content[0].text.value}`);
}

// 3. stream with event listeners
await client.beta.threads.messages.create(thread.id, { role: 'user', content: 'And 2x = 8?' });
const stream = client.beta.threads.runs
  .stream(thread.id, { assistant_id: tutor.id })
  .on('textCreated', () => process.stdout.write('assistant > '))
  .on('textDelta', (delta) => process.stdout.write(delta.value))
  .on('textDone', () => process.stdout.write('\n'));
const streamed = await stream.finalRun();
console.log('streamed run:', streamed.id, streamed.status);

// 4. a streamed function call, answered with submitToolOutputsStream
const weather = await client.beta.assistants.create({
  name: 'Weather Bot',
  instructions: 'You are a weather bot. Use the provided functions to answer questions.',
  model: 'gpt-4o',
  tools: [
    {
      type: 'function',
      function: {
        name: 'get_temperature',
        description: 'The current temperature in a city, in degrees Celsius',
        parameters: {
          type: 'object',
          properties: { city: { type: 'string' } },
          required: ['city'],
        },
      },
    },
  ],
});
const temperatures = { Paris: '18', Oslo: '4' };
const weatherThread = await client.beta.threads.create({
  messages: [{ role: 'user', content: 'How warm is it in Paris and in Oslo?' }],
});
console.log('weather thread:', weatherThread.id);

async function answer(paused) {
  const toolOutputs = paused.required_action.submit_tool_outputs.tool_calls.map((call) => ({
    tool_call_id: call.id,
    output: temperatures[JSON.parse(call.function.arguments).city],
  }));
  const continuation = client.beta.threads.runs
    .submitToolOutputsStream(paused.id, { thread_id: paused.thread_id, tool_outputs: toolOutputs })
    .on('textDelta', (delta) => process.stdout.write(delta.value))
    .on('textDone', (text) => console.log(`\nanswer: ${text.value}`));
  return continuation.finalRun();
}

const first = client.beta.threads.runs
  .stream(weatherThread.id, { assistant_id: weather.id })
  .on('toolCallCreated', (call) => console.log('tool call:', call.id, call.function.name))
  .on('toolCallDone', (call) => console.log('tool call arguments:', call.function.arguments));
const paused = await first.finalRun();
console.log('paused run:', paused.id, paused.status);
const done = await answer(paused);
console.log('final run:', done.id, done.status);

// 5. the same with polling: createAndPoll, then submitToolOutputsAndPoll
await client.beta.threads.messages.create(weatherThread.id, {
  role: 'user',
  content: 'And in Oslo again?',
});
run = await client.beta.threads.runs.createAndPoll(weatherThread.id, { assistant_id: weather.id });
console.log('polled run:', run.id, run.status);
while (run.status === 'requires_action') {
  const outputs = run.required_action.submit_tool_outputs.tool_calls.map((call) => ({
    tool_call_id: call.id,
    output: temperatures[JSON.parse(call.function.arguments).city],
  }));
  run = await client.beta.threads.runs.submitToolOutputsAndPoll(run.id, {
    thread_id: weatherThread.id,
    tool_outputs: outputs,
  });
  console.log('polled run:', run.id, run.status);
}
const last = await client.beta.threads.messages.list(weatherThread.id, { limit: 1 });
console.log('polled answer:', last.data[0].content[0].text.value);
