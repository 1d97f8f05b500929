"""shipyard's infrastructure side: the platform spec, the Pulumi program, its targets and the offline plan."""
