"""Seed compatibility: ``lexigram`` re-exports ai_feedback's application container."""

from ai_feedback import Application, Container, Module

__all__ = ["Application", "Container", "Module"]
