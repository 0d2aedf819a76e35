"""Streaming a run with an event handler that prints the answer as it is written."""

from openai import AssistantEventHandler, OpenAI
from typing_extensions import override

client = OpenAI()


class EventHandler(AssistantEventHandler):
    @override
    def on_text_created(self, text) -> None:
        print("assistant > ", end="", flush=True)

    @override
    def on_text_delta(self, delta, snapshot):
        print(delta.value, end="", flush=True)

    @override
    def on_text_done(self, text) -> None:
        print()

    @override
    def on_run_step_created(self, run_step) -> None:
        print("step:", run_step.type)

    @override
    def on_message_done(self, message) -> None:
        print("message done:", message.id, message.status)


assistant = client.beta.assistants.create(
    name="Poet",
    instructions="You are a poet. Answer every question with a short verse.",
    model="gpt-4o",
)
thread = client.beta.threads.create(
    messages=[{"role": "user", "content": "Write a verse about the sea."}]
)
print("thread:", thread.id)

with client.beta.threads.runs.stream(
    thread_id=thread.id,
    assistant_id=assistant.id,
    event_handler=EventHandler(),
) as stream:
    stream.until_done()
    run = stream.get_final_run()

print("run:", run.id, run.status)

# The same, iterating the events instead of using a handler.
client.beta.threads.messages.create(thread.id, role="user", content="And one about the hills.")
with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
    names = [event.event for event in stream]
print("events:", " ".join(names))
