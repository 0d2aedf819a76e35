"""Function calling while streaming: the handler answers requires_action by streaming the
tool outputs back with submit_tool_outputs_stream."""

import json

from openai import AssistantEventHandler, OpenAI
from typing_extensions import override

client = OpenAI()

TEMPERATURES = {"Paris": "18", "Oslo": "4"}


def get_temperature(city: str) -> str:
    return TEMPERATURES.get(city, "unknown")


assistant = client.beta.assistants.create(
    name="Weather Bot",
    instructions="You are a weather bot. Use the provided functions to answer questions.",
    model="gpt-4o",
    tools=[
        {
            "type": "function",
            "function": {
                "name": "get_temperature",
                "description": "The current temperature in a city, in degrees Celsius",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ],
)
thread = client.beta.threads.create()
client.beta.threads.messages.create(
    thread_id=thread.id, role="user", content="How warm is it in Paris and in Oslo?"
)
print("thread:", thread.id)


class EventHandler(AssistantEventHandler):
    @override
    def on_event(self, event):
        if event.event == "thread.run.requires_action":
            self.handle_requires_action(event.data)

    @override
    def on_tool_call_created(self, tool_call):
        print("tool call:", tool_call.id, tool_call.function.name)

    @override
    def on_tool_call_done(self, tool_call):
        print("tool call arguments:", tool_call.function.arguments)

    @override
    def on_text_delta(self, delta, snapshot):
        print(delta.value, end="", flush=True)

    @override
    def on_text_done(self, text):
        print()
        print("answer:", text.value)

    def handle_requires_action(self, run):
        tool_outputs = []
        for call in run.required_action.submit_tool_outputs.tool_calls:
            if call.function.name == "get_temperature":
                city = json.loads(call.function.arguments)["city"]
                tool_outputs.append({"tool_call_id": call.id, "output": get_temperature(city)})
        print("submitting:", len(tool_outputs))
        with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=self.current_run.thread_id,
            run_id=self.current_run.id,
            tool_outputs=tool_outputs,
            event_handler=EventHandler(),
        ) as stream:
            stream.until_done()
            final = stream.get_final_run()
            print("final run:", final.id, final.status)


with client.beta.threads.runs.stream(
    thread_id=thread.id,
    assistant_id=assistant.id,
    event_handler=EventHandler(),
) as stream:
    stream.until_done()
