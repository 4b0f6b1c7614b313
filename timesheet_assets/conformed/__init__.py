"""The conformed model: schema, union assets across vendors, asset checks."""
