"""What operators watch: Prometheus metrics (``metrics.py``) and structured logs (``logs.py``).

Nothing here imports FastAPI or Starlette: the HTTP layer (``app.py``, ``api/routes/ops.py``)
feeds these modules and serves what they produce.
"""
