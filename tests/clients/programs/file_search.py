"""Knowledge retrieval: upload files into a vector store, give it to an assistant with the
file_search tool, attach one more file to a message, and print the answer with citations."""

import tempfile
from pathlib import Path

from openai import OpenAI

client = OpenAI()

folder = Path(tempfile.mkdtemp())
documents = {
    "tickets.txt": "Fares. A season ticket for the Larkspur tramway costs 214 crowns.",
    "history.txt": "The Larkspur tramway opened in 1899 and got electric cars in 1921.",
    "birds.txt": "Herons fish along the Larkspur canal in the early morning.",
    "timetable.txt": "Trams leave the Larkspur depot every twelve minutes.",
}
for name, text in documents.items():
    (folder / name).write_text(text)

assistant = client.beta.assistants.create(
    name="Tram Guide",
    instructions="You are a guide to the Larkspur tramway. Answer from the files you have.",
    model="gpt-4o",
    tools=[{"type": "file_search"}],
)

vector_store = client.vector_stores.create(name="Larkspur")
print("vector store:", vector_store.id)

file_paths = [folder / "tickets.txt", folder / "history.txt", folder / "birds.txt"]
file_streams = [open(path, "rb") for path in file_paths]  # noqa: SIM115 (as the docs write it)
file_batch = client.vector_stores.file_batches.upload_and_poll(
    vector_store_id=vector_store.id, files=file_streams
)
print("batch:", file_batch.status, file_batch.file_counts.completed, file_batch.file_counts.total)

with open(folder / "timetable.txt", "rb") as timetable:
    single = client.vector_stores.files.upload_and_poll(
        vector_store_id=vector_store.id, file=timetable
    )
print("single file:", single.id, single.status)

assistant = client.beta.assistants.update(
    assistant_id=assistant.id,
    tool_resources={"file_search": {"vector_store_ids": [vector_store.id]}},
)

with open(folder / "history.txt", "rb") as f:
    attached = client.files.create(file=f, purpose="assistants")
print("uploaded:", attached.id, attached.filename, attached.bytes)

thread = client.beta.threads.create(
    messages=[
        {
            "role": "user",
            "content": "How much is a season ticket for the tramway?",
            "attachments": [{"file_id": attached.id, "tools": [{"type": "file_search"}]}],
        }
    ]
)
print("thread:", thread.id)
print("thread stores:", len(thread.tool_resources.file_search.vector_store_ids))

run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
print("run:", run.id, run.status)

messages = list(client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id))
message_content = messages[0].content[0].text
annotations = message_content.annotations
citations = []
for index, annotation in enumerate(annotations):
    message_content.value = message_content.value.replace(annotation.text, f"[{index}]")
    if file_citation := getattr(annotation, "file_citation", None):
        cited_file = client.files.retrieve(file_citation.file_id)
        citations.append(f"[{index}] {cited_file.filename}")

print("answer:", message_content.value)
for citation in citations:
    print("citation:", citation)

files = client.vector_stores.files.list(vector_store_id=vector_store.id)
print("store files:", len(files.data), sorted(f.status for f in files.data))
