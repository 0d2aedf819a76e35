"""How work reaches the workers: in-process wake-ups (embedded) or a task queue (distributed)."""
