"""Assistants quickstart: an assistant, a thread, a message, a run polled to the end.

Plain SDK usage; the client reads OPENAI_BASE_URL and OPENAI_API_KEY from the environment.
"""

from openai import OpenAI

client = OpenAI()

assistant = client.beta.assistants.create(
    name="Math Tutor",
    instructions="You are a personal math tutor. Answer math questions briefly.",
    model="gpt-4o",
)
print("created assistant:", assistant.id)

thread = client.beta.threads.create()
print("thread:", thread.id)

message = client.beta.threads.messages.create(
    thread_id=thread.id,
    role="user",
    content="I need to solve the equation `3x + 11 = 14`. Can you help me?",
)

run = client.beta.threads.runs.create_and_poll(
    thread_id=thread.id,
    assistant_id=assistant.id,
)
print("run:", run.id, run.status)

if run.status == "completed":
    messages = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id)
    for msg in messages:
        print(f"{msg.role}: {msg.content[0].text.value}")
    print("usage:", run.usage.prompt_tokens, run.usage.completion_tokens, run.usage.total_tokens)
else:
    print("run did not complete:", run.status, run.last_error)

# One call for a new thread and its run.
run = client.beta.threads.create_and_run_poll(
    assistant_id=assistant.id,
    thread={"messages": [{"role": "user", "content": "What is 7 times 6?"}]},
)
print("second run:", run.id, run.thread_id, run.status)
for msg in client.beta.threads.messages.list(thread_id=run.thread_id, order="asc"):
    print(f"{msg.role}: {msg.content[0].text.value}")

# Everything this thread has seen, newest first.
for past in client.beta.threads.runs.list(thread_id=thread.id):
    print("past run:", past.id, past.status)
