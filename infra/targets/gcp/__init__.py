"""The GCP target: the platform on Google Cloud's managed services (Cloud Run, Cloud SQL, GCS, Workflows).

`check` and `ignored` (`rules`) are pure; `build` (`program`) imports pulumi-gcp only when a stack is
built. See docs/gcp.md.
"""
