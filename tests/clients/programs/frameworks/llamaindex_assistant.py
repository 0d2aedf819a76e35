"""LlamaIndex's OpenAIAssistantAgent (llama-index-agent-openai, on the 1.x `openai` SDK) with a
FunctionTool. Its OpenAI client reads OPENAI_BASE_URL and OPENAI_API_KEY."""

from llama_index.agent.openai import OpenAIAssistantAgent
from llama_index.core.tools import FunctionTool


def get_temperature(city: str) -> str:
    """The current temperature in a city, in degrees Celsius."""
    return {"Paris": "18", "Oslo": "4"}.get(city, "unknown")


agent = OpenAIAssistantAgent.from_new(
    name="Weather Bot",
    instructions="You are a weather bot. Use the provided functions to answer questions.",
    tools=[FunctionTool.from_defaults(fn=get_temperature)],
    model="gpt-4o",
)
response = agent.chat("How warm is it in Paris?")
print("reply:", str(response))
print("sources:", " ".join(str(s.content) for s in response.sources))
print("thread:", agent.thread_id)
for message in agent.chat_history:
    print(f"history: {message.role.value} {message.content}")
