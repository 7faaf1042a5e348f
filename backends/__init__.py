"""Backends (numpy, torch, tensorflow, jax) behind one protocol, plus layouts and parity judging."""

from .protocol import Backend
from .registry import BackendUnavailable, available, get, reason, status

__all__ = ["Backend", "BackendUnavailable", "available", "get", "reason", "status"]
