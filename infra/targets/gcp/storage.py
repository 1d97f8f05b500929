"""The artifact bucket and who may touch which part of it.

One bucket per platform: uniform bucket-level access, public access prevention enforced, versioned,
encrypted with the platform key, noncurrent versions kept for the spec's retention only; protected and
retained in prod. No retention policy: it would lock MLflow's objects. Access is granted per workload and
key prefix with IAM conditions: each workload may list the bucket, read its prefixes, write its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_gcp import storage

from infra.spec import PlatformSpec
from infra.targets.gcp.foundation import Foundation, after, stateful
from infra.targets.gcp.names import gcp_name

#: Where Cloud Run mounts the bucket (Cloud Storage FUSE) in every workload.
MOUNT = "/mnt/artifacts"


def prefix_condition(bucket: str, prefixes: Sequence[str]) -> str:
    """A CEL condition: the bucket itself (listing) or an object under one of `prefixes`."""
    terms = [f'resource.name == "projects/_/buckets/{bucket}"']
    terms += [f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{p.strip("/")}/")'
              for p in sorted(set(prefixes))]
    return " || ".join(terms)


@dataclass
class ArtifactBucket:
    """The platform's bucket and its name."""

    bucket: storage.Bucket
    name: pulumi.Output[str]

    def uri(self, *parts: str) -> pulumi.Output[str]:
        """`gs://<bucket>/<parts...>`."""
        path = "/".join(p.strip("/") for p in parts)
        return self.name.apply(lambda bucket: f"gs://{bucket}/{path}")

    def grant(self, name: str, member: pulumi.Input[str], opts: pulumi.ResourceOptions, *,
              read: Sequence[str] = (), write: Sequence[str] = ()) -> None:
        """Let `member` read objects under `read` and read, write and delete under `write` (one grant each)."""
        for role, prefixes, kind in (("roles/storage.objectViewer", read, "read"),
                                     ("roles/storage.objectUser", write, "write")):
            if not prefixes:
                continue
            storage.BucketIAMMember(
                f"{name}-{kind}", bucket=self.name, role=role, member=member, opts=opts,
                condition=storage.BucketIAMMemberConditionArgs(
                    title=f"shipyard {kind} prefixes", description=", ".join(sorted(prefixes))[:256],
                    expression=self.name.apply(lambda b, p=prefixes: prefix_condition(b, p))))


def artifact_bucket(spec: PlatformSpec, base: Foundation, opts: pulumi.ResourceOptions) -> ArtifactBucket:
    """The private, versioned, CMEK-encrypted artifact bucket (auto-named: bucket names are global)."""
    retention = spec.registry.artifacts.noncurrent_version_retention_days
    bucket = storage.Bucket(
        gcp_name(spec.prefix, "artifacts", kind="bucket", autonamed=True), project=base.project,
        location=base.region.upper(), storage_class="STANDARD", uniform_bucket_level_access=True,
        public_access_prevention="enforced", force_destroy=not spec.protect, labels=base.labels,
        versioning=storage.BucketVersioningArgs(enabled=spec.registry.artifacts.versioning),
        encryption=storage.BucketEncryptionArgs(default_kms_key_name=base.key.id),
        lifecycle_rules=[storage.BucketLifecycleRuleArgs(
            action=storage.BucketLifecycleRuleActionArgs(type="Delete"),
            condition=storage.BucketLifecycleRuleConditionArgs(days_since_noncurrent_time=retention,
                                                               with_state="ARCHIVED"))],
        opts=stateful(after(opts, *base.key_grants), spec))
    return ArtifactBucket(bucket=bucket, name=bucket.name)
