"""The run-event bus: the executor publishes, SSE responses subscribe, with replay."""
