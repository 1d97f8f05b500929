"""The local target: the platform as processes on this machine, started by `shipyard up --stack local`.

`check` and `ignored` (`rules`) say what the target does with the spec; `build` (`program`) declares the
four components with no cloud resources.
"""
