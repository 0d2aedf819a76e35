"""Retrieval for vector stores and ``file_search``: extract -> chunk -> embed -> index -> search.

``extract`` (file bytes to text), ``chunking`` (token windows), ``embedders`` (text to vectors,
``minilm`` being the offline model), ``index`` (the chunk index protocol and its SQLite and
PostgreSQL implementations), ``search`` (hybrid ranking and attribute filters), ``catalog``
(what the database says is searchable) and ``ingest`` (the background worker).
"""
