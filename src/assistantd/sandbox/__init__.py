"""code_interpreter sessions behind one protocol (base.py); the bubblewrap backend (bwrap.py)."""

from assistantd.sandbox.base import (
    Execution,
    InputFile,
    Limits,
    OutputFile,
    Sandbox,
    SandboxUnavailable,
)
from assistantd.sandbox.bwrap import BwrapSandbox, default_env

__all__ = [
    "BwrapSandbox",
    "Execution",
    "InputFile",
    "Limits",
    "OutputFile",
    "Sandbox",
    "SandboxUnavailable",
    "default_env",
]
