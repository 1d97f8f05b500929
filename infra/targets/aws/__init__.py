"""The AWS target: the platform on managed AWS services, with no cluster to operate.

`check` and `ignored` (`rules`) are pure; `build` (`program`) imports the AWS SDK only when a stack is
built. See docs/aws.md.
"""
