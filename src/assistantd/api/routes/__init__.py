"""One router per resource, named after the OpenAI paths."""
