from .io_manager import WarehouseDbIOManager, WarehouseIOManager, warehouse_io_manager
from .staging import SEQUENCE_COLUMN, StagedRows, StagingTable
from .target import WarehouseTarget, parse_target, redact_url
from .warehouse import PRIMARY_KEY, SKIP_COLUMNS, WRITE_MODE

__all__ = [
    "PRIMARY_KEY",
    "SEQUENCE_COLUMN",
    "SKIP_COLUMNS",
    "StagedRows",
    "StagingTable",
    "WRITE_MODE",
    "WarehouseDbIOManager",
    "WarehouseIOManager",
    "WarehouseTarget",
    "parse_target",
    "redact_url",
    "warehouse_io_manager",
]
