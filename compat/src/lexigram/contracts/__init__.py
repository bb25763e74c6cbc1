"""Seed compatibility: ``lexigram.contracts``."""
