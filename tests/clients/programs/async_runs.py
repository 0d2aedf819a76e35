"""The async client: create_and_poll, create_and_run_poll, a streamed run with an async event
handler, and a function call answered with submit_tool_outputs_stream."""

import asyncio
import json

from openai import AsyncAssistantEventHandler, AsyncOpenAI
from typing_extensions import override

client = AsyncOpenAI()

LENGTHS = {"Danube": "2850", "Rhine": "1233"}


class Printer(AsyncAssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    @override
    async def on_text_created(self, text) -> None:
        print("assistant > ", end="", flush=True)

    @override
    async def on_text_delta(self, delta, snapshot) -> None:
        print(delta.value, end="", flush=True)

    @override
    async def on_text_done(self, text) -> None:
        print()

    @override
    async def on_tool_call_created(self, tool_call) -> None:
        print("tool call:", tool_call.function.name)

    @override
    async def on_tool_call_done(self, tool_call) -> None:
        self.calls.append(tool_call)


async def main() -> None:
    assistant = await client.beta.assistants.create(
        name="River Expert",
        instructions="You are a river expert. Use river_length for lengths.",
        model="gpt-4o",
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "river_length",
                    "parameters": {
                        "type": "object",
                        "properties": {"river": {"type": "string"}},
                        "required": ["river"],
                    },
                },
            }
        ],
    )
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": "Which rivers flow through Vienna?"}]
    )
    print("thread:", thread.id)

    run = await client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id
    )
    print("polled run:", run.id, run.status)
    messages = await client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id)
    print("polled answer:", messages.data[0].content[0].text.value)

    await client.beta.threads.messages.create(
        thread.id, role="user", content="How long are the Danube and the Rhine?"
    )
    handler = Printer()
    async with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        await stream.until_done()
        paused = await stream.get_final_run()
    print("streamed run:", paused.id, paused.status)

    outputs = [
        {
            "tool_call_id": call.id,
            "output": LENGTHS[json.loads(call.function.arguments)["river"]],
        }
        for call in handler.calls
    ]
    async with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id, run_id=paused.id, tool_outputs=outputs, event_handler=Printer()
    ) as stream:
        await stream.until_done()
        done = await stream.get_final_run()
    print("continued run:", done.id, done.status)

    run = await client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Name a river in Spain."}]},
    )
    print("create_and_run_poll:", run.id, run.status)
    async for message in client.beta.threads.messages.list(thread_id=run.thread_id):
        print(f"{message.role}: {message.content[0].text.value}")


asyncio.run(main())
