"""``python -m ai_feedback``: the command line."""

from __future__ import annotations

from ai_feedback.cli import main

main()
