"""shipyard's policy pack: the policies of `shipyard plan` (infra/policies.py), enforced by the Pulumi CLI.

    pulumi preview --policy-pack policy-pack        # from the project directory, on any stack

The CLI creates this pack's virtualenv (venv/) from requirements.txt and starts this program, which
serves the policies over gRPC until the CLI is done (it cannot run without the CLI). The project's
`infra` package is loaded from the parent directory, so the pack and `shipyard plan` share one code.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project: infra/
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this pack: shipyard_pack

import pulumi_policy
from pulumi_policy import policy as policy_runtime
from pulumi_policy import proxy
from shipyard_pack import mask_wire, pack_policies, validator

UNKNOWNS = frozenset(getattr(proxy, name) for name in dir(proxy) if name.startswith("UNKNOWN_") and
                     name.endswith("_VALUE"))

# pulumi-policy deserializes properties with secrets unwrapped to plaintext and unknowns as sentinels;
# the shared policies expect the plan's view ('[secret]', '[unknown]'), so the pack hands them that.
policy_runtime.deserialize_properties = lambda props, proxy_secrets=False: mask_wire(props, UNKNOWNS)

CONFIG_SCHEMA = pulumi_policy.PolicyConfigSchema(properties={
    "environment": {"type": "string", "enum": ["dev", "staging", "prod"],
                    "description": "Overrides the environment read from the stack file."},
    "private_network": {"type": "boolean"},
    "models": {"type": "array", "items": {"type": "string"}},
    "public_models": {"type": "array", "items": {"type": "string"}},
})

pulumi_policy.PolicyPack(
    name="shipyard",
    enforcement_level=pulumi_policy.EnforcementLevel.MANDATORY,
    policies=[
        pulumi_policy.StackValidationPolicy(
            name=registration.name,
            description=registration.description,
            enforcement_level=pulumi_policy.EnforcementLevel(registration.level),
            validate=validator(registration),
            config_schema=CONFIG_SCHEMA,
        )
        for registration in pack_policies()
    ],
)
