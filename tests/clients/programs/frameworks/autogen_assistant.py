"""AutoGen's OpenAIAssistantAgent (autogen-ext): a function tool, a file for file_search, state
saving and clean-up. The AsyncOpenAI client reads OPENAI_BASE_URL and OPENAI_API_KEY."""

import asyncio
import tempfile
from pathlib import Path

from autogen_agentchat.messages import TextMessage
from autogen_core import CancellationToken
from autogen_ext.agents.openai import OpenAIAssistantAgent
from openai import AsyncOpenAI


async def get_temperature(city: str) -> str:
    """The current temperature in a city, in degrees Celsius."""
    return {"Paris": "18", "Oslo": "4"}.get(city, "unknown")


async def main() -> None:
    token = CancellationToken()
    assistant = OpenAIAssistantAgent(
        name="weather_bot",
        description="Answers weather questions",
        client=AsyncOpenAI(),
        model="gpt-4o",
        instructions="You are a weather bot. Use the provided functions to answer questions.",
        tools=[get_temperature, "file_search"],
    )
    response = await assistant.on_messages(
        [TextMessage(source="user", content="How warm is it in Paris?")], token
    )
    print("reply:", response.chat_message.content)
    for inner in response.inner_messages or []:
        print("inner:", type(inner).__name__, inner.content)

    folder = Path(tempfile.mkdtemp())
    (folder / "climate.txt").write_text("Paris has mild winters and warm summers.")
    await assistant.on_upload_for_file_search(str(folder / "climate.txt"), token)
    response = await assistant.on_messages(
        [TextMessage(source="user", content="What are winters like in Paris?")], token
    )
    print("second reply:", response.chat_message.content)

    state = await assistant.save_state()
    print("thread:", state["thread_id"])
    print("assistant id:", state["assistant_id"])
    print("vector store:", state["vector_store_id"])
    print("uploaded:", " ".join(state["uploaded_file_ids"]))

    await assistant.on_reset(token)
    await assistant.delete_uploaded_files(token)
    await assistant.delete_vector_store(token)
    await assistant.delete_assistant(token)
    print("cleaned up")


asyncio.run(main())
