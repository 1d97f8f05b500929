"""Encryption and object storage: the platform's KMS key and the artifact bucket.

One customer-managed key (rotated yearly) encrypts everything that stores data: the bucket, the
database, the secrets, the logs, the alert topic, the image repository and SageMaker's volumes. The
bucket is versioned, SSE-KMS encrypted, closed to the public, TLS-only, ACL-free, and keeps noncurrent
versions for the spec's retention only. In prod both are protected and retained on delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_aws import kms, s3

from infra.spec import PlatformSpec
from infra.targets.aws import iam
from infra.targets.aws.names import aws_name


def key_policy(account: str, region: str) -> iam.Document:
    """The platform key's policy: the account administers it through IAM; CloudWatch Logs and CloudWatch
    alarms (publishing to the encrypted SNS topic) may use it, scoped to this account."""
    return iam.document([
        {"Sid": "AccountAdministersThroughIam", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "CloudWatchLogs", "Effect": "Allow", "Principal": {"Service": f"logs.{region}.amazonaws.com"},
         "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
         "Resource": "*",
         "Condition": {"ArnLike": {
             "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account}:log-group:*"}}},
        {"Sid": "CloudWatchAlarmsToEncryptedTopic", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account}}},
    ])


def tls_only_policy(bucket_arn: str) -> iam.Document:
    """Deny every request to the bucket that does not come over TLS."""
    return iam.document([{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }])


def lifecycle_rules(noncurrent_days: int) -> list[s3.BucketLifecycleConfigurationRuleArgs]:
    """Expire noncurrent versions after the spec's retention; clean up abandoned uploads and delete markers."""
    return [
        s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-noncurrent-versions", status="Enabled",
            filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=noncurrent_days),
            expiration=s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
            abort_incomplete_multipart_upload=s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7),
        ),
    ]


def stateful(opts: pulumi.ResourceOptions, spec: PlatformSpec) -> pulumi.ResourceOptions:
    """Options for state that must outlive mistakes: protected and retained on delete when the spec says so."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=spec.protect,
                                                                     retain_on_delete=spec.protect))


def platform_key(spec: PlatformSpec, account: pulumi.Input[str], opts: pulumi.ResourceOptions) -> kms.Key:
    """The platform's customer-managed KMS key, rotated, with an alias `alias/<prefix>`."""
    region = spec.region or ""
    key = kms.Key(f"{spec.prefix}-key", description=f"{spec.prefix}: encrypts the ML platform's data",
                  enable_key_rotation=True, deletion_window_in_days=30 if spec.is_prod else 7,
                  policy=iam.policy_json(lambda acct: key_policy(acct, region), account),
                  tags=spec.all_tags, opts=stateful(opts, spec))
    kms.Alias(f"{spec.prefix}-key", name=f"alias/{spec.prefix}", target_key_id=key.key_id, opts=opts)
    return key


@dataclass
class ArtifactBucket:
    """The platform's bucket and its name."""

    bucket: s3.Bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def uri(self, *parts: str) -> pulumi.Output[str]:
        """`s3://<bucket>/<parts...>`."""
        path = "/".join(p.strip("/") for p in parts)
        return self.name.apply(lambda bucket: f"s3://{bucket}/{path}")


def artifact_bucket(spec: PlatformSpec, key: kms.Key, opts: pulumi.ResourceOptions) -> ArtifactBucket:
    """The versioned, encrypted, private, TLS-only artifact bucket with its retention rules."""
    name = aws_name(spec.prefix, "artifacts", kind="s3_bucket", autonamed=True)
    bucket = s3.Bucket(name, force_destroy=not spec.protect, tags=spec.all_tags, opts=stateful(opts, spec))
    after_bucket = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[bucket]))
    s3.BucketOwnershipControls(name, bucket=bucket.id, opts=opts,
                               rule=s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"))
    access_block = s3.BucketPublicAccessBlock(name, bucket=bucket.id, block_public_acls=True,
                                              block_public_policy=True, ignore_public_acls=True,
                                              restrict_public_buckets=True, opts=after_bucket)
    s3.BucketVersioning(name, bucket=bucket.id, opts=opts,
                        versioning_configuration=s3.BucketVersioningVersioningConfigurationArgs(
                            status="Enabled" if spec.registry.artifacts.versioning else "Suspended"))
    s3.BucketServerSideEncryptionConfiguration(name, bucket=bucket.id, opts=opts, rules=[
        s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=(
                s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=key.arn)),
            bucket_key_enabled=True)])
    s3.BucketPolicy(name, bucket=bucket.id, policy=iam.policy_json(tls_only_policy, bucket.arn),
                    opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[access_block])))
    s3.BucketLifecycleConfiguration(name, bucket=bucket.id, opts=opts,
                                    rules=lifecycle_rules(spec.registry.artifacts.noncurrent_version_retention_days))
    return ArtifactBucket(bucket=bucket, name=bucket.bucket, arn=bucket.arn)


def upload(name: str, bucket: ArtifactBucket, key: pulumi.Input[str], opts: pulumi.ResourceOptions,
           kms_key: kms.Key, **content: Any) -> s3.BucketObjectv2:
    """One object in the bucket, SSE-KMS with the platform key; `content` is `source=` (an asset) or `content=`."""
    return s3.BucketObjectv2(name, bucket=bucket.bucket.id, key=key, server_side_encryption="aws:kms",
                             kms_key_id=kms_key.arn, bucket_key_enabled=True, opts=opts, **content)
