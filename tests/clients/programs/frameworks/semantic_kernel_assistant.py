"""Semantic Kernel's OpenAIAssistantAgent with a plugin: invoke (polling) and invoke_stream
(streaming), each answering a function call. The client reads OPENAI_BASE_URL and
OPENAI_API_KEY (the model id is passed, as SK otherwise wants OPENAI_CHAT_MODEL_ID)."""

import asyncio
from typing import Annotated

from semantic_kernel.agents import OpenAIAssistantAgent
from semantic_kernel.functions import kernel_function


class WeatherPlugin:
    @kernel_function(description="The current temperature in a city, in degrees Celsius.")
    def get_temperature(self, city: Annotated[str, "The city"]) -> str:
        return {"Paris": "18", "Oslo": "4"}.get(city, "unknown")


async def main() -> None:
    client = OpenAIAssistantAgent.create_client(ai_model_id="gpt-4o")
    definition = await client.beta.assistants.create(
        model="gpt-4o",
        name="WeatherBot",
        instructions="You are a weather bot. Use the provided functions to answer questions.",
    )
    agent = OpenAIAssistantAgent(client=client, definition=definition, plugins=[WeatherPlugin()])
    thread = None
    async for response in agent.invoke(messages="How warm is it in Paris?", thread=thread):
        print("reply:", response.content)
        thread = response.thread
    print("thread:", thread.id)

    parts = []
    async for response in agent.invoke_stream(messages="And in Oslo?", thread=thread):
        parts.append(str(response.content))
    print("streamed reply:", "".join(parts))

    async for message in thread.get_messages():
        print(f"history: {message.role.value} {message.content}")
    await thread.delete()
    await client.beta.assistants.delete(agent.id)
    print("cleaned up")


asyncio.run(main())
