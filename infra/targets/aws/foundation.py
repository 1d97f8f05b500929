"""What every AWS component shares: the network, the platform's KMS key, the runtime image repository, the
runtime image itself and the platform's overview dashboard (managed profile only).

A `shipyard:aws:Foundation` component (beside the four contract components) so that shared state has
one owner. By default the program builds the runtime image and pushes it to the ECR repository this stack
creates (`infra.components.RuntimeImage`); every workload runs the pushed digest. SageMaker runs images from ECR
only, so a pinned `runtime_image` from another registry is expected in that repository under the same digest
(see docs/aws.md); a pinned image that already lives in ECR is used where it is.
"""

from __future__ import annotations

import re

import pulumi
from pulumi_aws import cloudwatch, ecr, get_caller_identity_output

from infra.components import RegistryLogin, RuntimeImage
from infra.image import ImagePlan, parse_reference
from infra.spec import PlatformSpec
from infra.targets.aws import iam
from infra.targets.aws.names import aws_name
from infra.targets.aws.network import Network, build_network
from infra.targets.aws.storage import platform_key, stateful

_ECR_IMAGE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^:@]+)")


def image_suffix(image: str) -> str:
    """The tag or digest part of an image reference (`@sha256:...` wins over a tag; no tag means `:latest`)."""
    reference = parse_reference(image)
    return f"@{reference.digest}" if reference.digest else f":{reference.tag or 'latest'}"


def ecr_repository_arn(image: str) -> str | None:
    """The repository ARN of an image that already lives in ECR, or None for any other registry."""
    match = _ECR_IMAGE.match(image)
    if match is None:
        return None
    return f"arn:aws:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"


def mirrored_image(runtime_image: str, repository_url: str) -> str:
    """The image every workload runs: the spec's image if it is in ECR, else its tag/digest in our repository."""
    if ecr_repository_arn(runtime_image):
        return runtime_image
    return f"{repository_url}{image_suffix(runtime_image)}"


def ecr_login(repository: ecr.Repository) -> RegistryLogin:
    """Push credentials for the stack's repository: a 12-hour ECR token, fetched at each `up`."""
    token = ecr.get_authorization_token_output(registry_id=repository.registry_id,
                                               opts=pulumi.InvokeOptions(parent=repository))
    return RegistryLogin(address=repository.repository_url.apply(lambda url: url.partition("/")[0]),
                         username=token.user_name, password=pulumi.Output.secret(token.password))


def lifecycle_policy() -> str:
    """Expire untagged images after two weeks; tagged images (immutable, maybe pinned by a stack) stay."""
    return iam.to_json({"rules": [{
        "rulePriority": 1, "description": "expire untagged images",
        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
        "action": {"type": "expire"},
    }]})


class Foundation(pulumi.ComponentResource):
    """The network, the KMS key, the image repository and the overview dashboard of one platform."""

    network: Network
    account: pulumi.Output[str]
    image: pulumi.Output[str]
    repository_arn: pulumi.Output[str]

    def __init__(self, name: str, spec: PlatformSpec, image: ImagePlan, overview: tuple[str, str] | None,
                 opts: pulumi.ResourceOptions | None = None):
        """`image` says whether to build the runtime image; `overview` is the platform dashboard's (name, body);
        None (the EKS cluster profile, whose workloads publish no CloudWatch metrics) declares none."""
        super().__init__("shipyard:aws:Foundation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.region = spec.region or ""
        self.account = get_caller_identity_output(opts=pulumi.InvokeOptions(parent=self)).account_id
        self.network = build_network(spec, child)
        self.key = platform_key(spec, self.account, child)
        repository = ecr.Repository(
            f"{spec.prefix}-runtime", name=aws_name(spec.prefix, "runtime", kind="ecr"),
            image_tag_mutability="IMMUTABLE", force_delete=not spec.protect,
            image_scanning_configuration=ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS",
                                                                                 kms_key=self.key.arn)],
            tags=spec.all_tags, opts=stateful(child, spec))
        ecr.LifecyclePolicy(f"{spec.prefix}-runtime", repository=repository.name, policy=lifecycle_policy(),
                            opts=child)
        self.repository_url = repository.repository_url
        if image.pinned is None:
            self.repository_arn = repository.arn
            self.image = RuntimeImage(f"{spec.prefix}-runtime", image, repository.repository_url,
                                      ecr_login(repository), child).ref
        else:
            existing = ecr_repository_arn(image.pinned)
            self.repository_arn = pulumi.Output.from_input(existing) if existing else repository.arn
            self.image = repository.repository_url.apply(lambda url: mirrored_image(image.pinned or "", url))
        if overview is not None:
            cloudwatch.Dashboard(f"{spec.prefix}-overview", dashboard_name=overview[0], dashboard_body=overview[1],
                                 opts=child)
        self.register_outputs({"vpc_id": self.network.vpc_id, "key_arn": self.key.arn,
                               "repository_url": repository.repository_url, "image": self.image})
