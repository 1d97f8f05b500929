"""shipyard's ML pipelines: the code that runs inside whatever compute a target provisions."""
