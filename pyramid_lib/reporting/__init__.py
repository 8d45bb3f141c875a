"""Reporting: tables, figures and results pages, read from the runs and plans on disk. Only the CLI imports it.

    tables.py    results beside the paper's tables
    figures.py   the pages' figures
    analysis.py  the sentences that compare runs (targets, trends, variants)
    pages.py     results/README.md and the per-experiment pages
"""
