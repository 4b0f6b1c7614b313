"""The vendor environment variables docs/contracts.md names: what users type to configure a
vendor's resource."""

VENDOR_VARIABLES: tuple[str, ...] = (
    "AIMSIO_BASE_URL",
    "AIMSIO_USERNAME",
    "AIMSIO_PASSWORD",
    "AJERA_BASE_URL",
    "AJERA_API_ID",
    "AJERA_USERNAME",
    "AJERA_PASSWORD",
    "AJERA_TIMESHEET_DATE",
    "AIMS360_BASE_URL",
    "AIMS360_CLIENT_ID",
    "AIMS360_CLIENT_SECRET",
    "AIMS360_USERNAME",
    "AIMS360_PASSWORD",
    "AIMS360_ACCESS_TOKEN",
    "BLIKK_BASE_URL",
    "BLIKK_APP_ID",
    "BLIKK_APP_SECRET",
    "IBUILDAPP_BASE_URL",
    "IBUILDAPP_APP_CODE",
    "IBUILDAPP_EMAIL",
    "IBUILDAPP_PASSWORD",
    "IBUILDAPP_TOKEN",
    "IBUILDAPP_TIMEZONE",
)
