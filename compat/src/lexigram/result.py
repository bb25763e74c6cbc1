"""Seed compatibility: ``lexigram.result`` re-exports ai_feedback's result type."""

from ai_feedback.result import Err, Ok, Result

__all__ = ["Err", "Ok", "Result"]
