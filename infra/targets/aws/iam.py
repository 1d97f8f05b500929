"""IAM policy documents, built by pure functions from plain ARNs: one small builder per permission set.

Every workload gets its own role assembled from these pieces. No statement grants every action on every
resource; the few actions AWS only authorizes on `*` (ECR's token, ENI management, PutMetricData) are
named one by one, and PutMetricData is pinned to the platform's namespace by condition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pulumi

Statement = dict[str, Any]
Document = dict[str, Any]

VERSION = "2012-10-17"
KMS_USE = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]


def statement(actions: Sequence[str], resources: Sequence[str], condition: dict[str, Any] | None = None,
              sid: str | None = None) -> Statement:
    """One Allow statement; refuses the all-actions-on-all-resources shape outright."""
    if not actions or not resources:
        raise ValueError("a statement needs at least one action and one resource")
    if "*" in actions and "*" in resources:
        raise ValueError("refusing a statement that allows '*' on '*'")
    out: Statement = {"Effect": "Allow", "Action": sorted(set(actions)), "Resource": sorted(set(resources))}
    if sid:
        out = {"Sid": sid, **out}
    if condition:
        out["Condition"] = condition
    return out


def document(statements: Iterable[Statement]) -> Document:
    """A policy document of the given statements."""
    return {"Version": VERSION, "Statement": list(statements)}


def assume_role(service: str, source_account: str | None = None) -> Document:
    """The trust policy letting one AWS service assume a role (confused-deputy guard when an account is given)."""
    trust: Statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if source_account:
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return document([trust])


def pod_identity_trust(source_account: str) -> Document:
    """The trust policy of a role that EKS Pod Identity hands to the pods of one ServiceAccount (the association
    names the cluster, namespace and account; the agent tags the session with them)."""
    return document([{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                      "Action": ["sts:AssumeRole", "sts:TagSession"],
                      "Condition": {"StringEquals": {"aws:SourceAccount": source_account}}}])


def s3_access(bucket_arn: str, read: Sequence[str] = (), write: Sequence[str] = ()) -> list[Statement]:
    """Object access under key prefixes of one bucket (listing limited to those prefixes)."""
    prefixes = sorted({p.strip("/") for p in (*read, *write)})
    statements = [statement(["s3:ListBucket"], [bucket_arn],
                            {"StringLike": {"s3:prefix": [f"{p}/*" for p in prefixes] + prefixes}})]
    if read:
        statements.append(statement(["s3:GetObject", "s3:GetObjectVersion"],
                                    [f"{bucket_arn}/{p.strip('/')}/*" for p in read]))
    if write:
        statements.append(statement(["s3:PutObject", "s3:AbortMultipartUpload"],
                                    [f"{bucket_arn}/{p.strip('/')}/*" for p in write]))
    return statements


def kms_use(key_arn: str) -> Statement:
    """Encrypt and decrypt with the platform key (S3, logs, volumes, secrets all use it)."""
    return statement(KMS_USE, [key_arn])


def ecr_pull(repository_arn: str) -> list[Statement]:
    """Pull the runtime image from one repository (the auth token is account-wide by AWS's design)."""
    return [
        statement(["ecr:GetAuthorizationToken"], ["*"]),
        statement(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                  [repository_arn]),
    ]


def logs_write(log_group_arns: Sequence[str]) -> Statement:
    """Write log streams into the given log groups."""
    return statement(["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                     [f"{arn}:*" for arn in log_group_arns] + list(log_group_arns))


def sagemaker_logs(region: str, account: str) -> Statement:
    """Write the logs SageMaker jobs and endpoints emit (their groups live under /aws/sagemaker/)."""
    return statement(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                     [f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/*"])


def vpc_access() -> Statement:
    """Manage the network interfaces SageMaker attaches to jobs and endpoints inside the VPC."""
    return statement([
        "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
        "ec2:DeleteNetworkInterfacePermission", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
    ], ["*"])


def put_metrics(namespace: str) -> Statement:
    """Publish CloudWatch metrics, only into `namespace` (PutMetricData has no resource: '*' plus a condition)."""
    return statement(["cloudwatch:PutMetricData"], ["*"], {"StringEquals": {"cloudwatch:namespace": namespace}})


def start_pipelines(pipeline_arns: Sequence[str]) -> Statement:
    """Start (and follow) executions of the given SageMaker pipelines."""
    return statement(["sagemaker:StartPipelineExecution", "sagemaker:DescribePipelineExecution",
                      "sagemaker:ListPipelineExecutions"], list(pipeline_arns))


def run_pipeline_jobs(region: str, account: str, job_role_arns: Sequence[str], key_arn: str) -> list[Statement]:
    """What a SageMaker pipeline's execution role needs: start and follow its jobs, pass the jobs' roles, and
    let SageMaker encrypt the jobs' volumes and outputs with the platform key (grants for AWS resources only)."""
    jobs = [f"arn:aws:sagemaker:{region}:{account}:{kind}/pipelines-*" for kind in ("processing-job", "training-job")]
    return [
        statement(["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                   "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                   "sagemaker:AddTags"], jobs),
        statement(["iam:PassRole"], list(job_role_arns),
                  {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        kms_use(key_arn),
        statement(["kms:CreateGrant"], [key_arn], {"Bool": {"kms:GrantIsForAWSResource": "true"}}),
    ]


def exec_channels() -> Statement:
    """The SSM agent's channels inside an ECS task (ECS Exec, port forwarding): AWS authorizes them on '*' only."""
    return statement(["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                      "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"], ["*"])


#: The SSM document that forwards a local port to a port of the session's target (here: an MLflow task).
PORT_FORWARDING_DOCUMENT = "AWS-StartPortForwardingSession"


def port_forwarding(region: str, account: str, cluster_arn: str, cluster_name: str) -> list[Statement]:
    """Open an SSM port-forwarding session into the tasks of one ECS cluster, and find those tasks.

    Only the port-forwarding document: no shell (`ecs:ExecuteCommand` and the shell documents are not granted).
    Sessions are the caller's own, so they can end and resume only those.
    """
    return [
        statement(["ssm:StartSession"], [
            f"arn:aws:ecs:{region}:{account}:task/{cluster_name}/*",
            f"arn:aws:ssm:{region}::document/{PORT_FORWARDING_DOCUMENT}"]),
        statement(["ssm:TerminateSession", "ssm:ResumeSession"],
                  [f"arn:aws:ssm:{region}:{account}:session/${{aws:userid}}-*"]),
        statement(["ecs:DescribeTasks"], [f"arn:aws:ecs:{region}:{account}:task/{cluster_name}/*"]),
        statement(["ecs:ListTasks"], ["*"], {"ArnEquals": {"ecs:cluster": cluster_arn}}),
    ]


def read_secrets(secret_arns: Sequence[str]) -> Statement:
    """Read the given Secrets Manager secrets (ECS injects them into the container's environment)."""
    return statement(["secretsmanager:GetSecretValue"], list(secret_arns))


def mlflow_app_access(tracking_server_arn: str) -> Statement:
    """Use SageMaker's managed MLflow tracking server (its API is authorized per server)."""
    return statement(["sagemaker-mlflow:*"], [tracking_server_arn])


def allows_everything(doc: Document) -> list[Statement]:
    """The statements of `doc` that allow '*' (or 'service:*' wildcards of all) on '*': none should exist."""
    bad = []
    for stmt in doc.get("Statement", []):
        actions = stmt.get("Action", [])
        resources = stmt.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if stmt.get("Effect") == "Allow" and "*" in actions and "*" in resources:
            bad.append(stmt)
    return bad


def to_json(doc: Document) -> str:
    """A document as the compact, key-sorted JSON IAM stores (stable, so diffs stay quiet)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def policy_json(build: Any, *inputs: pulumi.Input[str]) -> pulumi.Output[str]:
    """`build(*resolved inputs)` -> document, as a JSON Output once every input is known."""
    return pulumi.Output.all(*inputs).apply(lambda values: to_json(build(*values)))
