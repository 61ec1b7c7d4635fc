"""Checking, cleaning and describing a dataset: validation, duplicates, statistics."""
