"""What a request can do, independent of HTTP. Bodies arrive validated, as plain dicts."""
