"""Listing with auto-pagination: the SDK follows `after` cursors page by page."""

from openai import OpenAI

client = OpenAI()

created = []
for i in range(7):
    created.append(client.beta.assistants.create(name=f"Helper {i}", model="gpt-4o-mini").id)
print("created:", " ".join(created))

# Newest first, two at a time, every page fetched on demand.
for assistant in client.beta.assistants.list(limit=2):
    print("assistant:", assistant.id, assistant.name)

# Oldest first, page by page by hand.
page = client.beta.assistants.list(limit=3, order="asc")
pages = 1
while page.has_next_page():
    page = page.get_next_page()
    pages += 1
print("pages:", pages)

thread = client.beta.threads.create()
for i in range(5):
    client.beta.threads.messages.create(thread.id, role="user", content=f"note {i}")
notes = [
    m.content[0].text.value
    for m in client.beta.threads.messages.list(thread.id, limit=2, order="asc")
]
print("notes:", ", ".join(notes))

deleted = 0
for assistant in client.beta.assistants.list(limit=2):
    if assistant.name == "Helper 0":
        client.beta.assistants.delete(assistant.id)
        deleted += 1
print("deleted:", deleted)
print("remaining:", len(list(client.beta.assistants.list(limit=100))))
