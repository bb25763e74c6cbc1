"""
The dashboard: pages served at ``/ui`` for people who review feedback.

Server-rendered (Jinja2) with Chart.js vendored under ``static/``; behind the same keys
as the API (``read`` scope), checked by a login form that leaves a signed session in an
HttpOnly cookie.
"""

from __future__ import annotations

from ai_feedback.server.ui.pages import router

__all__ = ["router"]
