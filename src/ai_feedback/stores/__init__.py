"""
Feedback stores.

The in-memory store is always available; database stores live in their own submodules
so that their drivers are imported only when used.
"""

from __future__ import annotations

from ai_feedback.stores.memory import MemoryFeedbackStore

__all__ = ["MemoryFeedbackStore"]
