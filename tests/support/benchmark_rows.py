"""The columns every vendor benchmark row must carry (the performance issue's table)."""

BENCHMARK_ROW_KEYS = {
    "vendor",
    "scenario",
    "requests",
    "records",
    "wall_s",
    "achieved_rps",
    "documented_limit_rps",
    "utilisation_pct",
    "rate_violations",
    "requests_per_1000_records",
}
