"""Payload and file codecs: tabular files, JSON shapes, CSV rows."""
