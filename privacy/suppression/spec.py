"""What a published table looks like (`TableSpec`) and which disclosure rules apply (`DisclosureRules`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

PUBLISHED = "published"
SUPPRESSED = "suppressed"
SUPPRESSED_SECONDARY = "suppressed_secondary"
BANDED = "banded"
NOT_ESTIMABLE = "not_estimable"

# What a reader of the published table sees; the reason stays in `ProtectionResult.cells` (restricted),
# because "primary: 4 students" next to a blank cell would publish the 4.
PUBLIC_NOTE_SUPPRESSED = "suppressed (disclosure control)"
PUBLIC_NOTE_SECONDARY = "suppressed: count suppressed"


@dataclass(frozen=True)
class TableSpec:
    """The shape of one tidy published table, as far as disclosure control needs to know it.

    `totals` maps a dimension to its total label (school_id -> "ALL"): the row with that label is the
    sum of the dimension's other rows. `nested` maps a child dimension to its parent dimension when the
    child's total is the same population whatever the parent says (subgroup_value "all" is the whole
    school for every subgroup): `{"subgroup_value": "subgroup"}`.
    `count_measure` is the additive student count (value == n) that the other measures are computed
    from; `extra_counts` are further additive counts (e.g. "users"); `sum_measures` are additive sums
    (minutes) that the dominance rule can apply to; `percentages` maps a percentage measure to the
    count measure of its numerator (its n is the denominator). Any other measure is derived from the
    count cell with the same dimensions (means, effect sizes) and follows its status.
    """

    name: str
    dims: tuple[str, ...]
    totals: Mapping[str, str] = field(default_factory=dict)
    count_measure: str = "students"
    extra_counts: tuple[str, ...] = ()
    sum_measures: tuple[str, ...] = ()
    percentages: Mapping[str, str] = field(default_factory=dict)
    nested: Mapping[str, str] = field(default_factory=dict)
    percent_scale: float = 100.0  # 100 when percentages are 0–100, 1 when they are shares
    # Within one row: total measure = Σ part measures (students = users + non_users), so a small
    # complement is a cell the attacker's LP sees, not a subtraction it misses.
    row_sums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A total dim whose margin holds for some measures only (users = Σ usage bands for the treated
    # arm, but every band shares one comparison group): {dim: measures}; unlisted dims hold for all.
    margin_measures: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [d for d in (*self.totals, *self.nested, *self.nested.values()) if d not in self.dims]
        if unknown:
            raise ValueError(f"table {self.name!r}: {unknown} are not among its dims {self.dims}")
        loose = [
            m
            for total, parts in self.row_sums.items()
            for m in (total, *parts)
            if m not in self.count_measures
        ]
        if loose:
            raise ValueError(f"table {self.name!r}: row sums over {loose}, which are not its count measures")

    @property
    def count_measures(self) -> tuple[str, ...]:
        return (self.count_measure, *self.extra_counts)

    @property
    def additive_measures(self) -> tuple[str, ...]:
        return (*self.count_measures, *self.sum_measures)


@dataclass(frozen=True)
class DisclosureRules:
    """Thresholds of the consortium's disclosure policy.

    A count cell with 0 < n < `min_cell_size` is unsafe (and n == 0 when `zeros_unsafe`). Every
    suppressed cell must keep an attacker's interval at least ± max(min_cell_size, `protection_fraction`
    × value) around its value (downwards only as far as 0). `dominance_p` switches on the p% rule for
    sum measures (needs contributions). Percentages with a small numerator or complement are shown as
    `band_low`/`band_high` bands when they fall outside (`band_low_edge`, `band_high_edge`).
    """

    min_cell_size: int = 10
    zeros_unsafe: bool = False
    protection_fraction: float = 0.10
    dominance_p: float | None = None  # percent, e.g. 10.0
    band_low_edge: float = 5.0  # percent
    band_high_edge: float = 95.0  # percent
    mip_max_cells: int = 30_000  # above this many cells in one linked component: greedy heuristic
    # seconds per master MIP solve: a safety net only (hitting it would make the pattern depend on
    # the machine; the manifest records each solve's status)
    mip_time_limit: float = 60.0
    # A component with more primary cells than this gets the greedy pattern: its MIP's cut rounds
    # (attacker LPs per round) grow with the primaries; at 100 schools the 116-primary component ran
    # 5 minutes to save 4 of 934 cells (docs/scaling.md). By count, not by clock: the same data
    # must always get the same pattern.
    mip_max_primaries: int = 50
    max_cut_rounds: int = 50

    def __post_init__(self) -> None:
        if self.min_cell_size < 1:
            raise ValueError("min_cell_size must be at least 1")
        if not 0 <= self.protection_fraction < 1:
            raise ValueError("protection_fraction must be in [0, 1)")

    @property
    def band_low(self) -> str:
        return f"<{self.band_low_edge:g}%"

    @property
    def band_high(self) -> str:
        return f">{self.band_high_edge:g}%"

    def is_small(self, count: float) -> bool:
        """True when a count of students may not be published exactly."""
        return 0 < count < self.min_cell_size or (self.zeros_unsafe and count == 0)

    def protection_level(self, value: float, *, is_count: bool) -> float:
        """How far (up, and down to 0) an attacker must be unable to narrow a suppressed cell."""
        relative = self.protection_fraction * abs(value)
        return max(float(self.min_cell_size), relative) if is_count else relative


def strictest_rules(rules: DisclosureRules, contract_min_cells: Iterable[int]) -> DisclosureRules:
    """The rules with `min_cell_size` raised to the strictest contract's: never weaker than any contract."""
    strictest = max([rules.min_cell_size, *contract_min_cells])
    return replace(rules, min_cell_size=strictest)
