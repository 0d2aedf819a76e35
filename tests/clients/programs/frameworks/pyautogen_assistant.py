"""AutoGen 0.2 (pyautogen): GPTAssistantAgent with a registered function, driven by a
UserProxyAgent. The config list names the base URL and key, read from the environment."""

import os

from autogen import UserProxyAgent
from autogen.agentchat.contrib.gpt_assistant_agent import GPTAssistantAgent

llm_config = {
    "config_list": [
        {
            "model": "gpt-4o",
            "api_key": os.environ["OPENAI_API_KEY"],
            "base_url": os.environ["OPENAI_BASE_URL"],
        }
    ]
}


def get_temperature(city: str) -> str:
    return {"Paris": "18", "Oslo": "4"}.get(city, "unknown")


assistant = GPTAssistantAgent(
    name="weather_bot",
    instructions="You are a weather bot. Use the provided functions to answer questions.",
    llm_config=llm_config,
    assistant_config={
        "tools": [
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
        ]
    },
)
assistant.register_function(function_map={"get_temperature": get_temperature})

user = UserProxyAgent(name="user", human_input_mode="NEVER", code_execution_config=False)
result = user.initiate_chat(assistant, message="How warm is it in Paris?", max_turns=1)
print("reply:", result.chat_history[-1]["content"].strip())
print("assistant id:", assistant.assistant_id)
print("thread:", assistant.oai_threads[user].id)
assistant.delete_assistant()
print("deleted")
