"""Run-level policies for the HTTP-bound assets."""

import dagster as dg

# The HTTP core already retries single requests; this retries the whole step when a vendor
# outage outlasts those attempts (a rerun replaces its partition, so it is safe).
HTTP_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)
