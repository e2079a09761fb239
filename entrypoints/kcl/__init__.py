"""`campaign-workers kcl`: the KCL MultiLangDaemon run for a stream worker, one job a module.

properties (the daemon's properties file), daemon (its jars, command line and environment),
supervisor (restarts, a lock per worker id, dying with its supervisor), leases (priming the
lease table of a local endpoint). entrypoints/kcl_cli.py is the command line over them.
"""
