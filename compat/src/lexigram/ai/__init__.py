"""Seed compatibility: ``lexigram.ai``."""
