"""Cancelling a run that takes too long."""

import time

from openai import OpenAI

client = OpenAI()

assistant = client.beta.assistants.create(
    name="Storyteller",
    instructions="You are a storyteller. Tell very long stories.",
    model="gpt-4o",
)
thread = client.beta.threads.create(
    messages=[{"role": "user", "content": "Tell me the longest story you know."}]
)
print("thread:", thread.id)

run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
while run.status == "queued":
    time.sleep(0.2)
    run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
print("started:", run.id, run.status)

run = client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)
print("cancel answered:", run.status)

run = client.beta.threads.runs.poll(thread_id=thread.id, run_id=run.id)
print("run:", run.id, run.status, run.cancelled_at is not None)

message = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
print("message:", message.status, message.incomplete_details.reason)
print("partial:", message.content[0].text.value)
