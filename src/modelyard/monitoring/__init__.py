"""Monitoring engines: pure computations, no HTTP, CLI or SQL.

- ``sketch``, ``frequencies``, ``profile``, ``codec``: deterministic, mergeable, bounded
  sketches of tables (the baselines and the captured windows);
- ``stats`` (one drift statistic per module), ``pairs``, ``drift``, ``quality``, ``schema``:
  comparing a profile with a baseline;
- ``report_*``: the monitoring report page.

Importing this package imports none of its modules.
"""
