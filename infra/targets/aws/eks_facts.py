"""The EKS cluster profile's tables (pure: no SDK): node groups from the AWS size table, AMIs, add-ons, limits.

Instances come from `infra.targets.aws.sizes` (the SageMaker instance of a size class without its `ml.` prefix is
the EC2 instance the class means on a node), so a size moves on both profiles with one row.
"""

from __future__ import annotations

from infra.spec import PlatformSpec
from infra.targets.aws.sizes import SIZES, training_instance
from infra.targets.cluster import PoolPlan, system_size_class
from infra.targets.cluster import pool_plans as cluster_pools

#: The Kubernetes version the cluster runs (what the workloads are validated against) and EKS's spelling of it.
KUBERNETES_VERSION = "1.33.0"
EKS_VERSION = ".".join(KUBERNETES_VERSION.split(".")[:2])

#: AMI families of the node groups: Amazon Linux 2023 on CPU nodes; Bottlerocket's NVIDIA variant on GPU nodes
#: (its driver and the NVIDIA device plugin come with the image, so nodes advertise `nvidia.com/gpu`).
CPU_AMI = "AL2023_x86_64_STANDARD"
GPU_AMI = "BOTTLEROCKET_x86_64_NVIDIA"
#: The block device that holds images and pod volumes, per AMI family (Bottlerocket's second volume is its data).
DATA_DEVICE = {CPU_AMI: "/dev/xvda", GPU_AMI: "/dev/xvdb"}
#: Size of that volume (GiB, gp3): the runtime image, the wheel cache and emptyDir volumes.
DATA_VOLUME_GB = 100

#: EKS add-ons, in the order they can start: the CNI enforcing NetworkPolicies, kube-proxy, the Pod Identity
#: agent (before anything that needs an AWS identity), CoreDNS and the EBS CSI driver (both need nodes).
NETWORK_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
NODE_ADDONS = ("coredns", "aws-ebs-csi-driver")
#: The VPC CNI enforces the workloads' NetworkPolicies only when asked.
ADDON_CONFIG = {"vpc-cni": {"enableNetworkPolicy": "true"}}
#: The EBS CSI controller's ServiceAccount (its AWS identity is a Pod Identity association) and AWS's policy for it.
EBS_CSI_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"

#: What EKS requires of the nodes' role (and nothing else: pods get their own identities through Pod Identity):
#: joining the cluster, pulling images from ECR, and the VPC CNI's network interfaces.
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy")
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
#: The EKS Pod Identity agent's link-local address and port: where a pod's AWS SDK fetches its credentials.
POD_IDENTITY_PORT = 80
#: Ports the tracking server's pods call for the bucket: S3 (443, through the gateway endpoint) and the agent.
ARTIFACT_PORTS = (443, POD_IDENTITY_PORT)


def node_instance(sagemaker_instance: str) -> str:
    """The EC2 instance type behind a SageMaker instance type (`ml.m5.xlarge` -> `m5.xlarge`)."""
    return sagemaker_instance.removeprefix("ml.")


def system_instance(spec: PlatformSpec) -> str:
    """The system group's instance: the training instance of the biggest of the tracking server's and the
    endpoints' classes."""
    return node_instance(SIZES[system_size_class(spec)].training)


def node_group_plans(spec: PlatformSpec) -> list[PoolPlan]:
    """The cluster's node groups (`infra.targets.cluster.pool_plans`) on EC2 instances (the GPU instance with
    `training.gpu_count` GPUs for size 'gpu'); spot nodes carry no extra taint on EKS."""
    training = spec.training
    return cluster_pools(spec, system_machine=system_instance(spec),
                         training_machine=node_instance(training_instance(training.size, training.gpu_count)))


def ami(plan: PoolPlan) -> str:
    """A node group's AMI family: Bottlerocket NVIDIA for GPU nodes, Amazon Linux 2023 otherwise."""
    return GPU_AMI if plan.gpus else CPU_AMI


def capacity_type(plan: PoolPlan) -> str:
    """EKS's capacity type: spot nodes are labelled `eks.amazonaws.com/capacityType: SPOT` by EKS."""
    return "SPOT" if plan.spot else "ON_DEMAND"

#: The Cluster Autoscaler (what moves the managed node groups between their bounds, from zero): the release of
#: the cluster's Kubernetes minor, pulled from registry.k8s.io through an ECR pull-through cache (the VPC has no
#: internet route), its ServiceAccount, and the ASG tag EKS puts on every managed node group of a cluster.
AUTOSCALER_VERSION = "v1.33.0"
AUTOSCALER_UPSTREAM = "registry.k8s.io"
AUTOSCALER_REPOSITORY = "autoscaling/cluster-autoscaler"
AUTOSCALER_ACCOUNT = ("kube-system", "cluster-autoscaler")
#: The longest repository prefix of an ECR pull-through cache rule.
CACHE_PREFIX_LIMIT = 30


def autoscaler_tag(cluster_name: str) -> str:
    """The ASG tag key EKS sets (value `owned`) on the managed node groups of `cluster_name`."""
    return f"k8s.io/cluster-autoscaler/{cluster_name}"


def autoscaler_args(cluster_name: str) -> list[str]:
    """The Cluster Autoscaler's flags: AWS, the groups of this cluster found by their ASG tags (labels and taints
    of a group at zero come from `eks:DescribeNodegroup`), similar groups balanced, the least waste first, and
    nodes with emptyDir volumes (every pod of the workloads has one) still scaled down."""
    return ["--cloud-provider=aws",
            f"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,{autoscaler_tag(cluster_name)}",
            "--balance-similar-node-groups", "--expander=least-waste", "--skip-nodes-with-local-storage=false",
            "--stderrthreshold=info", "--v=2"]
