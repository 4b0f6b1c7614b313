"""One folder per vendor: resource (client), models, sandbox, assets and conform mapping."""
