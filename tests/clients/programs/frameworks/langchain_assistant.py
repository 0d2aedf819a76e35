"""LangChain's Assistants runnables (langchain-classic's OpenAIAssistantRunnable, as a plain
runnable and as an agent behind AgentExecutor, and langchain-community's
OpenAIAssistantV2Runnable). The OpenAI client reads OPENAI_BASE_URL and OPENAI_API_KEY."""

from langchain_classic.agents import AgentExecutor
from langchain_classic.agents.openai_assistant import OpenAIAssistantRunnable
from langchain_community.agents.openai_assistant import OpenAIAssistantV2Runnable
from langchain_core.tools import tool


@tool
def get_temperature(city: str) -> str:
    """The current temperature in a city, in degrees Celsius."""
    return {"Paris": "18", "Oslo": "4"}.get(city, "unknown")


tutor = OpenAIAssistantRunnable.create_assistant(
    name="langchain assistant",
    instructions="You are a personal math tutor. Answer math questions briefly.",
    tools=[],
    model="gpt-4o",
)
messages = tutor.invoke({"content": "What's 10 - 4 raised to the 2.7"})
print("reply:", messages[-1].content[0].text.value)
thread_id = messages[-1].thread_id
print("thread:", thread_id)
messages = tutor.invoke({"content": "And squared?", "thread_id": thread_id})
print("follow-up:", messages[-1].content[0].text.value, messages[-1].thread_id == thread_id)

agent = OpenAIAssistantRunnable.create_assistant(
    name="langchain weather agent",
    instructions="You are a weather bot. Use the provided functions to answer questions.",
    tools=[get_temperature],
    model="gpt-4o",
    as_agent=True,
)
executor = AgentExecutor(agent=agent, tools=[get_temperature])
result = executor.invoke({"content": "How warm is it in Paris?"})
print("agent output:", result["output"])
print("agent thread:", result["thread_id"])
print("agent run:", result["run_id"])

v2 = OpenAIAssistantV2Runnable.create_assistant(
    name="langchain v2 assistant",
    instructions="You are a personal math tutor. Answer math questions briefly.",
    tools=[],
    model="gpt-4o",
)
messages = v2.invoke({"content": "What is 7 times 6?"})
print("v2 reply:", messages[-1].content[0].text.value)
