"""The async client: `async for` auto-pagination and the vector store upload helpers."""

import asyncio
import io

from openai import AsyncOpenAI

client = AsyncOpenAI()


async def main() -> None:
    made = await asyncio.gather(
        *(client.beta.threads.create(metadata={"n": str(i)}) for i in range(5))
    )
    print("threads made:", len(made))
    for i in range(5):
        await client.beta.assistants.create(name=f"Async helper {i}", model="gpt-4o-mini")

    names = []
    async for assistant in client.beta.assistants.list(limit=2, order="asc"):
        names.append(assistant.name)
    print("assistants:", ", ".join(names))

    first = await client.beta.assistants.list(limit=2)
    pages = 1
    page = first
    while page.has_next_page():
        page = await page.get_next_page()
        pages += 1
    print("pages:", pages)

    store = await client.vector_stores.create(name="async notes")
    batch = await client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id,
        files=[
            ("alpha.md", io.BytesIO(b"# Alpha\nThe alpha note talks about apples.")),
            ("beta.md", io.BytesIO(b"# Beta\nThe beta note talks about bananas.")),
        ],
    )
    print("batch:", batch.status, batch.file_counts.completed)
    single = await client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("gamma.md", io.BytesIO(b"# Gamma\nThe gamma note talks about grapes.")),
    )
    print("single:", single.status)

    statuses = []
    async for store_file in client.vector_stores.files.list(vector_store_id=store.id, limit=1):
        statuses.append(store_file.status)
    print("store files:", ", ".join(statuses))

    results = await client.vector_stores.search(vector_store_id=store.id, query="bananas")
    print("top hit:", results.data[0].filename)


asyncio.run(main())
