"""The chaos soak: a workload of mixed executions on the real services while processes, PostgreSQL and the
broker are killed and restarted and database connections are cut; it then proves nothing was lost, wedged
or paid twice. Not a test: `make chaos` / `make chaos-short`, or `python -m sous_local.chaos --help`.
"""
