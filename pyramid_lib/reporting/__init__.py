"""Reporting: tables, figures and results pages, read from the runs and plans on disk. Only the CLI imports it.

    stats.py     spread over seeds, means over classes with 95% intervals, paired differences, verdict()
    records.py   what each run folder records: settings, initialisation, machine, commit; the pages' facts
    tables.py    results beside the paper's tables
    figures.py   the pages' figures
    analysis.py  paired comparisons (ours vs the paper and the baselines, ablations, variants)
    numbers.py   results/ANALYSIS.md's numbers, called from its template (templates/analysis.md.j2)
    pages.py     results/README.md and the per-experiment pages (templates/*.md.j2, Jinja2)
"""
