"""The Kubernetes target: the whole platform in one namespace of an existing cluster.

`check` and `ignored` (`rules`) are pure; `build` (`program`) imports the Kubernetes SDK only when a stack
is built. Modules:

- `sizes`: size class -> requests / limits (the one table to edit for a new size);
- `layout`: names, ports, paths; `labels`: `app.kubernetes.io/*`; `network`: the allowed flows; `rbac`: the
  monitor's only permissions; `workload`: security contexts and the shared "install the wheel, then run" pod.
"""
