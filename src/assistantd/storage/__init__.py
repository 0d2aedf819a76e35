"""Persistence: the engine, the tables, the migrations and the repositories over them."""
