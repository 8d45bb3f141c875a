"""Reporting: tables, figures and results pages, read from the runs on disk. Only the CLI imports it."""
