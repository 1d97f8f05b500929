"""The local target's runtime: the whole platform as real processes on this machine.

`layout` (pure: paths, ports, URLs, commands), `cron` (pure: schedule matching), `reconcile` (pure: what
to start, restart, keep or stop), `procs` and `state` (the thin process and file shell), `platform`
(the steps of `up`/`down`), `scheduler` (the monitor scheduler process) and `commands` (the CLI).
"""
