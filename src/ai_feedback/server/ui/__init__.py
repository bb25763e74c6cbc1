"""
The dashboard: pages served at ``/ui`` for people who review feedback.

Server-rendered (Jinja2) with Chart.js vendored under ``static/``; behind the same keys
as the API (``read`` scope), kept in an HttpOnly cookie after a login form.
"""

from __future__ import annotations

from ai_feedback.server.ui.pages import router

__all__ = ["router"]
