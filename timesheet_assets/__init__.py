"""timesheet-assets: a Dagster code location that lands timesheets and projects from five
field-service / professional-services systems into one conformed warehouse model."""

__version__ = "0.1.0"
