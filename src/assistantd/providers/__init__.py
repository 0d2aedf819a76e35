"""Model adapters behind one protocol (``base.py``)."""
