"""Deterministic synthetic data shared by the sandboxes."""

from __future__ import annotations

import random
from datetime import date, timedelta

from pydantic import BaseModel, Field

FIRST_NAMES = (
    "Ada",
    "Bjorn",
    "Carla",
    "Dev",
    "Elin",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kai",
    "Lena",
    "Mateo",
    "Nora",
    "Omar",
    "Petra",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Ulla",
    "Viktor",
)
LAST_NAMES = (
    "Andersson",
    "Berg",
    "Chen",
    "Diaz",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Holm",
    "Ivanova",
    "Jensen",
    "Khan",
    "Larsen",
    "Moreau",
    "Nilsson",
    "Okafor",
    "Patel",
    "Quist",
    "Rossi",
)
PROJECT_WORDS = (
    "Harbour",
    "Ridge",
    "Pipeline",
    "Substation",
    "Clinic",
    "Bridge",
    "Depot",
    "Tower",
    "Canal",
    "School",
    "Warehouse",
    "Retrofit",
    "Landscape",
    "Pump Station",
    "Library",
    "Terminal",
)
TASKS = ("Site work", "Design", "Inspection", "Travel", "Project management", "Commissioning")


class SandboxConfig(BaseModel):
    """Size and shape of a sandbox's seeded data. ``anchor_date`` is the last day with data;
    the data covers ``days`` days up to it."""

    seed: int = 42
    time_records: int = Field(default=300, ge=0)
    projects: int = Field(default=12, ge=1)
    employees: int = Field(default=15, ge=1)
    days: int = Field(default=30, ge=1)
    anchor_date: date = Field(default_factory=date.today)

    @property
    def first_date(self) -> date:
        return self.anchor_date - timedelta(days=self.days - 1)

    def rng(self, salt: str) -> random.Random:
        return random.Random(f"{salt}:{self.seed}")


def person_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def project_name(rng: random.Random, index: int) -> str:
    return f"{rng.choice(PROJECT_WORDS)} {rng.choice(PROJECT_WORDS)} {index:03d}"


def quarter_hours(rng: random.Random, low: float, high: float) -> float:
    """A random duration on a quarter-hour grid, as time sheets have."""
    steps = rng.randint(int(low * 4), int(high * 4))
    return steps / 4
