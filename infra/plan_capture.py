"""Running the real Pulumi program under the SDK's mock runtime and capturing the resource graph.

A `MockMonitor` subclass sees every RegisterResource request whole (parent, dependencies, property
dependencies, protect, retain-on-delete), which the SDK's `Mocks.new_resource` does not. Mocked
resources answer with plausible computed outputs from `infra.plan_mocks`, so outputs and the inputs
that depend on them are filled in rather than silently empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func

from infra.plan_mocks import PlanMocks
from infra.stackfile import PROJECT, LoadedStack

SECRET = "[secret]"
UNKNOWN = "[unknown]"


@dataclass
class CapturedResource:
    """One declared resource, as the engine would have received it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    #: The explicit provider reference (`<provider urn>::<id>`), empty for the default provider.
    provider: str = ""

    def to_json(self) -> dict[str, Any]:
        """The resource as `plan --json` prints it."""
        return {
            "urn": self.urn, "type": self.type, "name": self.name, "parent": self.parent,
            "dependencies": self.dependencies, "inputs": self.inputs,
            "protect": self.protect, "retain_on_delete": self.retain_on_delete,
        }


@dataclass
class Capture:
    """What one evaluation of the program declared and exported."""

    stack: str
    resources: list[CapturedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def wire_to_plain(value: Any) -> Any:
    """A wire-format property value as plain JSON: secrets become '[secret]', unknowns '[unknown]'."""
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return SECRET
        if sig == rpc._special_resource_sig:
            return value.get("urn", "")
        if sig == rpc._special_output_value_sig:
            if value.get("secret"):
                return SECRET
            return wire_to_plain(value["value"]) if "value" in value else UNKNOWN
        if sig is not None:  # assets and archives
            return {k: wire_to_plain(v) for k, v in value.items() if k != rpc._special_sig_key}
        return {k: wire_to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire_to_plain(v) for v in value]
    if value == rpc.UNKNOWN:
        return UNKNOWN
    return value


class CapturingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also recording each registration request in full.

    The SDK calls the monitor from executor threads and gives each such thread an event loop of its own
    (`sync_await._ensure_event_loop`) that nothing closes; `thread_loops` collects them for `close_thread_loops`.
    """

    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.captured: list[CapturedResource] = []
        self.thread_loops: set[asyncio.AbstractEventLoop] = set()

    def _note_thread_loop(self) -> None:
        if threading.current_thread() is threading.main_thread():
            return
        with contextlib.suppress(RuntimeError):  # none was made (components register without one)
            self.thread_loops.add(asyncio.get_event_loop_policy().get_event_loop())

    def close_thread_loops(self) -> None:
        """Close the executor threads' loops now, rather than in finalizers at interpreter exit (where they meet
        closed sockets: "Exception ignored in BaseEventLoop.__del__ ... Invalid file descriptor: -1")."""
        for loop in self.thread_loops:
            if not loop.is_closed() and not loop.is_running():
                loop.close()
        self.thread_loops.clear()

    def Invoke(self, request):
        try:
            return super().Invoke(request)
        finally:
            self._note_thread_loop()

    def ReadResource(self, request):
        try:
            return super().ReadResource(request)
        finally:
            self._note_thread_loop()

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        self._note_thread_loop()
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            self.captured.append(CapturedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                dependencies=sorted(set(request.dependencies)),
                property_dependencies={k: sorted(v.urns) for k, v in request.propertyDependencies.items()},
                inputs=wire_to_plain(raw),
                protect=bool(request.protect) if request.HasField("protect") else False,
                retain_on_delete=bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
                provider=request.provider,
            ))
        return response


async def _resolve(value: Any) -> Any:
    """An exported value with every Output awaited; secret leaves become '[secret]'."""
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [await _resolve(v) for v in value]
    if isinstance(value, pulumi.Output):
        if await value.is_secret():
            return SECRET
        if not await value.is_known():
            return UNKNOWN
        return await _resolve(await value.future())
    return value


def _secret_config(loaded: LoadedStack) -> tuple[dict[str, str], list[str]]:
    """Stack config for the mock runtime: `secure` leaves get a placeholder, their keys are secret."""
    config: dict[str, str] = {}
    secret_keys: list[str] = []

    def placeholder(node: Any) -> tuple[Any, bool]:
        if isinstance(node, dict):
            if "secure" in node and set(node) <= {"secure", "ref", "source"}:
                return f"{SECRET}", True
            pairs = {k: placeholder(v) for k, v in node.items()}
            return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
        if isinstance(node, list):
            items = [placeholder(v) for v in node]
            return [v for v, _ in items], any(s for _, s in items)
        return node, False

    for key, value in loaded.merged.items():
        plain, is_secret = placeholder(value)
        full = f"{PROJECT}:{key}"
        config[full] = plain if isinstance(plain, str) else json.dumps(plain)
        if is_secret:
            secret_keys.append(full)
    return config, secret_keys


def _reset_runtime() -> None:
    """Forget the SDK's global state from any earlier evaluation in this process."""
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    settings.set_root_resource(None)


def capture(loaded: LoadedStack, project_dir: Path) -> Capture:
    """Evaluate the real program for a validated stack under mocks; return what it declared and exported."""
    from infra.program import main  # the program module imports targets lazily; keep plan start-up lean

    mocks = PlanMocks(loaded.spec)
    monitor = CapturingMonitor(mocks)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        _reset_runtime()
        config, secret_keys = _secret_config(loaded)
        pulumi.runtime.set_all_config(config, secret_keys)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=loaded.stack, preview=False, monitor=monitor)
        # In the project directory, as Pulumi runs a program: paths the program writes relative to its working
        # directory (the runtime image's build context) come out as they would at `pulumi up`.
        with contextlib.chdir(project_dir):
            loop.run_until_complete(run_pulumi_func(lambda: main(project_dir, loaded.stack_file)))
        root = settings.get_root_resource()
        outputs = loop.run_until_complete(_resolve(dict(root.outputs))) if root is not None else {}
        return Capture(stack=loaded.stack, resources=monitor.captured, outputs=outputs)
    finally:
        _reset_runtime()
        monitor.close_thread_loops()
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()
