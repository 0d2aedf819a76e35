"""Function calling with polling: create_and_poll, then submit_tool_outputs_and_poll."""

import json

from openai import OpenAI

client = OpenAI()


def get_stock_price(symbol: str) -> str:
    return {"ACME": "101.5", "GLOBEX": "47.25"}.get(symbol, "n/a")


assistant = client.beta.assistants.create(
    name="Stock Helper",
    instructions="You are a stock helper. Look prices up with get_stock_price.",
    model="gpt-4o-mini",
    tools=[
        {
            "type": "function",
            "function": {
                "name": "get_stock_price",
                "description": "The last price of a stock",
                "parameters": {
                    "type": "object",
                    "properties": {"symbol": {"type": "string"}},
                    "required": ["symbol"],
                },
            },
        }
    ],
)
thread = client.beta.threads.create(
    messages=[{"role": "user", "content": "What do ACME and GLOBEX trade at?"}]
)
print("thread:", thread.id)

run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
print("run:", run.id, run.status)

while run.status == "requires_action":
    outputs = []
    for call in run.required_action.submit_tool_outputs.tool_calls:
        arguments = json.loads(call.function.arguments)
        outputs.append({"tool_call_id": call.id, "output": get_stock_price(arguments["symbol"])})
        print("called:", call.function.name, arguments["symbol"])
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, tool_outputs=outputs
    )
    print("run:", run.id, run.status)

steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
print("steps:", " ".join(step.type for step in steps))

messages = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id)
print("answer:", messages.data[0].content[0].text.value)
