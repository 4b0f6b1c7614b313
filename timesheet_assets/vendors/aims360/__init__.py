"""AIMS360 Aqua: views exported through asynchronous jobs, driven by ``aims360_export_sensor``.

No timesheets or projects (an apparel ERP): its views land as raw tables only.
"""

from ..registry import VendorPlugin
from . import definitions

PLUGIN = VendorPlugin(name="aims360", definitions=definitions.definitions, timesheets=None, projects=None)

__all__ = ["PLUGIN"]
