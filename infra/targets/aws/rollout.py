"""Rollouts on SageMaker, pure: the spec's strategy as a blue/green traffic shift, and the rule SageMaker holds
it to. The program (`serving.deployment_config`) and the rules (`rules.check`, `rules.ignored`) share it, so
`shipyard validate` refuses exactly the rollouts UpdateEndpoint would.

Capacity: the new (green) fleet starts at the endpoint configuration's initial instance count, which is the
spec's `min_replicas` (at least 1), not the old fleet's current scaled-out size. Steps are whole instances of
that fleet (`INSTANCE_COUNT`), so what is checked here is exactly what is sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.spec import RolloutSpec, ServingSpec

#: SageMaker caps the wait between steps (and the final bake) at an hour.
MAX_WAIT_SECONDS = 3600
#: A rolling update turns on this share of the fleet per step.
LINEAR_STEP_PERCENT = 25
#: SageMaker's TrafficRoutingConfig: a canary is at most half the variant's instance count; a linear step is
#: 10-50% of it (percent bounds, inclusive).
MAX_STEP_PERCENT = 50
MIN_LINEAR_STEP_PERCENT = 10
#: MaximumExecutionTimeoutInSeconds: SageMaker's bounds, and the margin shipyard adds to the steps' waits.
TIMEOUT_BOUNDS = (600, 14400)
TIMEOUT_MARGIN_SECONDS = 1800


@dataclass(frozen=True)
class TrafficShift:
    """How a new endpoint configuration takes the traffic."""

    type: str                    # CANARY | LINEAR | ALL_AT_ONCE
    step_instances: int | None   # canary size or linear step, in instances of the new fleet
    wait_seconds: int            # time each step is watched by the rollback alarms
    timeout_seconds: int         # the whole deployment's limit


def fleet_size(serving: ServingSpec) -> int:
    """Instances of the new fleet a rollout shifts onto: the initial count, `min_replicas` raised to 1."""
    return max(1, serving.min_replicas)


def step_instances(fleet: int, percent: int) -> int:
    """`percent` of the fleet in whole instances, rounded down, at least one (a step turns on an instance)."""
    return max(1, fleet * percent // 100)


def traffic_shift(rollout: RolloutSpec, fleet: int) -> TrafficShift:
    """The spec's rollout on a new fleet of `fleet` instances.

    canary: `canary_percent` of the fleet first (whole instances), watched for `bake_minutes`, then the rest;
    rolling: 25% of the fleet per step over `bake_minutes`; on a one-instance fleet that is the one instance
    at once, as a one-replica rolling update is anywhere, so it is a blue/green shift with the same bake;
    blue_green: all at once, watched for `bake_minutes` before the old fleet goes.
    """
    bake = rollout.bake_minutes * 60
    if rollout.strategy == "canary":
        kind, step, steps = "CANARY", step_instances(fleet, rollout.canary_percent), 2
    elif rollout.strategy == "rolling" and fleet > 1:
        step = step_instances(fleet, LINEAR_STEP_PERCENT)
        kind, steps = "LINEAR", math.ceil(fleet / step)
    else:
        kind, step, steps = "ALL_AT_ONCE", None, 1
    wait = min(bake // steps if kind == "LINEAR" else bake, MAX_WAIT_SECONDS)
    low, high = TIMEOUT_BOUNDS
    return TrafficShift(kind, step, wait, min(max(steps * wait + TIMEOUT_MARGIN_SECONDS, low), high))


def shift_problem(shift: TrafficShift, fleet: int) -> str | None:
    """Why SageMaker would refuse `shift` on a new fleet of `fleet` instances, or None."""
    if shift.step_instances is None:
        return None
    share = 100 * shift.step_instances / fleet
    what = "a canary" if shift.type == "CANARY" else "a linear step"
    if share > MAX_STEP_PERCENT:
        return (f"SageMaker refuses {what} of {shift.step_instances} instance(s) on a new fleet of {fleet} "
                f"(at most {MAX_STEP_PERCENT}% of the fleet, and a step is at least one instance): set "
                f"serving.min_replicas to at least {2 * shift.step_instances}, or rollout.strategy 'blue_green'")
    if shift.type == "LINEAR" and share < MIN_LINEAR_STEP_PERCENT:
        return (f"SageMaker refuses a linear step of {shift.step_instances} instance(s) on a new fleet of {fleet} "
                f"(at least {MIN_LINEAR_STEP_PERCENT}% of the fleet)")
    return None


def shift_notices(rollout: RolloutSpec, fleet: int) -> dict[str, str]:
    """Rollout keys (relative to `serving.rollout`) that are not honoured as written on this fleet, and why."""
    shift = traffic_shift(rollout, fleet)
    notices = {}
    if rollout.strategy == "canary" and shift.step_instances is not None:
        share = round(100 * shift.step_instances / fleet)
        if share != rollout.canary_percent and shift_problem(shift, fleet) is None:
            notices["canary_percent"] = (
                f"{rollout.canary_percent}% of a fleet of {fleet} is {shift.step_instances} whole instance(s): the "
                f"canary takes {share}% of the traffic (steps turn on whole instances)")
    if rollout.strategy == "rolling" and shift.type == "ALL_AT_ONCE":
        notices["strategy"] = ("'rolling' on a one-instance fleet shifts all traffic at once to the new instance "
                               "(blue/green, watched for bake_minutes); min_replicas >= 2 gives linear steps")
    if rollout.bake_minutes * 60 > MAX_WAIT_SECONDS:
        notices["bake_minutes"] = (f"{rollout.bake_minutes} is capped at {MAX_WAIT_SECONDS // 60}: SageMaker waits "
                                   "at most an hour between steps")
    return notices
