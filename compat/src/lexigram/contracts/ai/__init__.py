"""Seed compatibility: ``lexigram.contracts.ai``."""
