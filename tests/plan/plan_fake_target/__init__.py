"""A tiny target for the plan's own tests, registered by monkeypatching infra.targets.TARGETS (see `program`)."""
