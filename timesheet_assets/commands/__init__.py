"""The project's everyday commands (``timesheet-assets ...``): the local demo and UI, runs and
backfills on an instance, listings — so nobody needs a bare ``dagster`` call in the repository
root, where Dagster would pick up the production ``dagster.yaml``."""
