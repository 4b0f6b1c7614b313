from .warehouse import PRIMARY_KEY, WRITE_MODE, WarehouseIOManager, warehouse_io_manager

__all__ = ["PRIMARY_KEY", "WRITE_MODE", "WarehouseIOManager", "warehouse_io_manager"]
