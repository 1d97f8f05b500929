"""Pulumi's entry point (`main: infra` in Pulumi.yaml).

Pulumi runs this directory with `runpy.run_path`, which puts `infra/` itself first on `sys.path`; there
`infra/packaging.py` and `infra/secrets.py` would shadow the `packaging` and `secrets` modules the SDK
imports. `infra` is imported as a package by name, so its own directory comes off the path first.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]

from infra.program import main  # noqa: E402  (after the path fix, on purpose)

main()
