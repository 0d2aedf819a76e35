// Auto-pagination with `for await`, and the vector store upload helpers, with the npm `openai`
// SDK. The client reads OPENAI_BASE_URL and OPENAI_API_KEY from the environment.
// Run by tests/clients/test_node_sdk.py.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import OpenAI, { toFile } from 'openai';

const client = new OpenAI();

const created = [];
for (let i = 0; i < 7; i++) {
  const assistant = await client.beta.assistants.create({ name: `Helper ${i}`, model: 'gpt-4o' });
  created.push(assistant.id);
}
console.log('created:', created.join(' '));

// Every assistant, newest first, fetched two at a time.
for await (const assistant of client.beta.assistants.list({ limit: 2 })) {
  console.log('assistant:', assistant.id, assistant.name);
}

// Page by page by hand.
let page = await client.beta.assistants.list({ limit: 3, order: 'asc' });
let pages = 1;
while (page.hasNextPage()) {
  page = await page.getNextPage();
  pages += 1;
}
console.log('pages:', pages);

// Files from disk into a vector store, then one more from memory.
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'notes-'));
const names = ['apples.md', 'bananas.md', 'cherries.md'];
for (const name of names) {
  const fruit = name.replace('.md', '');
  fs.writeFileSync(path.join(folder, name), `# ${fruit}\nThis note is all about ${fruit}.\n`);
}
const store = await client.vectorStores.create({ name: 'Fruit notes' });
console.log('vector store:', store.id);
const batch = await client.vectorStores.fileBatches.uploadAndPoll(store.id, {
  files: names.map((name) => fs.createReadStream(path.join(folder, name))),
});
console.log('batch:', batch.status, batch.file_counts.completed, batch.file_counts.total);

const single = await client.vectorStores.files.uploadAndPoll(
  store.id,
  await toFile(Buffer.from('# dates\nThis note is all about dates.\n'), 'dates.md'),
);
console.log('single:', single.status);

const file = await client.files.create({
  file: fs.createReadStream(path.join(folder, 'apples.md')),
  purpose: 'assistants',
});
console.log('uploaded:', file.id, file.filename, file.bytes);

const statuses = [];
for await (const storeFile of client.vectorStores.files.list(store.id, { limit: 1 })) {
  statuses.push(storeFile.status);
}
console.log('store files:', statuses.join(', '));

const results = await client.vectorStores.search(store.id, { query: 'bananas' });
console.log('top hit:', results.data[0].filename);
