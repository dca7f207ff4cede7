"""Complementary suppression: which extra cells to hide so every hidden cell keeps its protection interval.

Exact method (Fischetti & Salazar-González 2001, cut generation): a master MIP with one binary per
additive cell minimizes information loss; it starts with the necessary conditions of each single
relation and then, for every hidden cell an attacker LP can still narrow, adds the Benders-like cut
read off that LP's duals; repeat until the attacker LPs find nothing. Fallback for very large
components: `greedy_pattern`, which adds the cheapest useful cell per failing relation or cut.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np

from privacy.suppression.attacker import (
    AttackerLP,
    ComponentLP,
    GrowingLP,
    Move,
    hidden_components,
    new_highs,
    relation_terms,
)
from privacy.suppression.cells import CellSystem

TOLERANCE = 1e-6


@dataclass(frozen=True)
class CellNeeds:
    """Per additive cell: true value, protection levels, information-loss weight, primary flag.

    A primary (sensitive) cell needs room `upper` above and `lower` below its value. Any other hidden
    cell needs a sliding interval: max − min ≥ `sliding` (what the value-blind audit checks).
    """

    value: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    sliding: np.ndarray
    weight: np.ndarray
    primary: np.ndarray  # bool


@dataclass
class PatternStats:
    method: str = "none"
    cut_rounds: int = 0
    cuts: int = 0
    attacker_lps: int = 0
    mip_status: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class Cut:
    """Σ coefficient[j]·y_j ≥ need·y_target: a hidden target needs this much room from the pattern."""

    target: int
    need: float
    coefficients: dict[int, float]

    def slack(self, pattern: set[int]) -> float:
        return sum(v for j, v in self.coefficients.items() if j in pattern) - self.need


def relation_cuts(system: CellSystem, needs: CellNeeds, cells: Iterable[int] | None = None) -> list[Cut]:
    """The necessary conditions inside each single relation: some other cell must be able to move.

    A part going up needs the total up or another part down (by at most its value); a part going down
    needs the total down or another part up; a total going up or down needs parts doing the same.
    """
    wanted = None if cells is None else set(cells)
    cuts = []
    for total, children in system.relations:
        for i in (total, *children):
            if wanted is None or i in wanted:
                cuts.extend(cuts_in_relation(needs, i, total, children))
    return cuts


def cuts_in_relation(needs: CellNeeds, i: int, total: int, children: Sequence[int]) -> list[Cut]:
    """`relation_cuts` for one cell of one relation."""
    if not needs.primary[i]:
        slide = needs.sliding[i]
        if slide <= TOLERANCE:
            return []
        # any other hidden member lets it slide one way or the other
        return [Cut(i, slide, {c: slide for c in (total, *children) if c != i})]
    up, down = needs.upper[i], needs.lower[i]
    others = [c for c in children if c != i]
    if i == total:
        cut_up = {c: up for c in children}
        cut_down = {c: min(needs.value[c], down) for c in children}
    else:
        cut_up = {total: up, **{c: min(needs.value[c], up) for c in others}}
        cut_down = {total: min(needs.value[total], down), **{c: down for c in others}}
    return [
        Cut(i, need, {j: v for j, v in coefficients.items() if v > TOLERANCE})
        for need, coefficients in ((up, cut_up), (down, cut_down))
        if need > TOLERANCE
    ]


class RelationCuts:
    """Each cell's relation cuts, built the first time the cell is hidden.

    Built all at once they are quadratic in a relation's size: a consortium total over 1,000
    schools gives each of its 1,000 cells a cut naming the other 1,000, and the large benchmark
    held 11 GB of them before the greedy pattern had hidden a single cell."""

    def __init__(self, system: CellSystem, needs: CellNeeds) -> None:
        self.system, self.needs = system, needs
        self._cuts: dict[int, list[Cut]] = {}

    def __call__(self, cell: int) -> list[Cut]:
        if cell not in self._cuts:
            self._cuts[cell] = [
                cut
                for r in self.system.relations_of[cell]
                for cut in cuts_in_relation(self.needs, cell, *self.system.relations[r])
            ]
        return self._cuts[cell]


def dual_room(
    system: CellSystem, needs: CellNeeds, target: int, direction: int, move: Move
) -> dict[int, float]:
    """How much room each cell would give `target` in one direction, by the attacker LP's duals γ.

    Fischetti–Salazar: with d = c − Mᵀγ (c = −direction·e_target), any pattern y lets the target move
    at most Σ_j (d_j⁺·value_j + d_j⁻·∞)·y_j, so a protecting pattern must make that sum large enough.
    """
    reduced: dict[int, float] = {target: -float(direction)}
    for r, gamma in move.row_duals.items():
        for j, coef in relation_terms(system.relations[r]):
            reduced[j] = reduced.get(j, 0.0) - coef * gamma
    room = {}
    for j, d in reduced.items():
        if d < -TOLERANCE:
            room[j] = math.inf
        elif d > TOLERANCE and d * needs.value[j] > TOLERANCE:
            room[j] = d * needs.value[j]
    return room


def _cut(target: int, need: float, *rooms: dict[int, float]) -> Cut:
    """Σ_j min(need, Σ rooms_j)·y_j ≥ need·y_target (capping at the need keeps the cut valid)."""
    total: dict[int, float] = {}
    for room in rooms:
        for j, v in room.items():
            total[j] = total.get(j, 0.0) + v
    return Cut(target, need, {j: min(need, v) for j, v in total.items()})


def attacker_failures(
    system: CellSystem,
    needs: CellNeeds,
    pattern: set[int],
    stats: PatternStats | None = None,
    cache: dict[tuple[int, ...], list[Cut]] | None = None,
) -> list[Cut]:
    """A cut for every hidden cell an attacker can narrow below its protection (the MIP's rounds;
    the greedy pattern keeps one growing model instead).

    A component's LPs depend only on its hidden cells (the rest are known constants), so `cache`
    remembers each component's cuts across rounds: a new round re-solves only what changed.
    """
    cuts = []
    for cells, rows in hidden_components(system, pattern):
        key = tuple(cells)
        if cache is not None and key in cache:
            cuts.extend(cache[key])
            continue
        lp = ComponentLP(system, cells, rows, lambda c: needs.value[c], start=needs.value[cells])
        _explore(lp, needs, cells)
        found = [cut for target in cells for cut in _target_failures(system, needs, lp, target)]
        if stats is not None:
            stats.attacker_lps += lp.solves
        if cache is not None:
            cache[key] = found
        cuts.extend(found)
    return cuts


def _short(distance: float, need: float) -> bool:
    return distance < need - TOLERANCE * max(1.0, need)


def _room_wanted(needs: CellNeeds, lp: AttackerLP, target: int) -> tuple[bool, bool]:
    """Does `target` still want a witness further up, further down? (False once the seen range
    gives the room the exact check would ask for: it would pass.)"""
    low, high = lp.seen(target)
    value = needs.value[target]
    if not needs.primary[target]:
        slide = needs.sliding[target]
        unsettled = slide > TOLERANCE and _short(high - low, slide)
        return unsettled, unsettled
    up, down = needs.upper[target], needs.lower[target]
    return (up > TOLERANCE and _short(high - value, up), down > TOLERANCE and _short(value - low, down))


def _explore(lp: AttackerLP, needs: CellNeeds, targets: Sequence[int]) -> None:
    """Batch witnesses for the targets still short of the room protect asks for."""
    lp.explore(targets, lambda c: _room_wanted(needs, lp, c))


def _target_failures(system: CellSystem, needs: CellNeeds, lp: AttackerLP, target: int) -> list[Cut]:
    """The exact check of one hidden cell; an LP only for a direction its witnesses leave short."""

    def move(direction: int) -> Move:
        return lp.move(target, direction, needs.value[target])

    want_up, want_down = _room_wanted(needs, lp, target)
    if not (want_up or want_down):
        return []
    if not needs.primary[target]:
        slide = needs.sliding[target]
        up = move(1)
        if not _short(up.distance, slide):
            return []
        down = move(-1)
        if not _short(up.distance + down.distance, slide):
            return []
        return [
            _cut(
                target,
                slide,
                dual_room(system, needs, target, 1, up),
                dual_room(system, needs, target, -1, down),
            )
        ]
    cuts = []
    for direction, need, wanted in ((1, needs.upper[target], want_up), (-1, needs.lower[target], want_down)):
        if wanted:
            found = move(direction)
            if _short(found.distance, need):
                cuts.append(_cut(target, need, dual_room(system, needs, target, direction, found)))
    return cuts


def _cell_components(system: CellSystem) -> list[list[int]]:
    """Connected components of all additive cells under the relations (independent problems)."""
    parent = list(range(len(system.cells)))

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for relation in system.relations:
        root = find(relation[0])
        for c in relation[1]:
            other = find(c)
            if other != root:
                parent[max(root, other)] = min(root, other)
                root = min(root, other)
    groups: dict[int, list[int]] = {}
    for c in range(len(system.cells)):
        groups.setdefault(find(c), []).append(c)
    return [groups[root] for root in sorted(groups)]


def greedy_pattern(
    system: CellSystem,
    needs: CellNeeds,
    start: Iterable[int],
    stats: PatternStats | None = None,
    cuts_of_cell: RelationCuts | None = None,
) -> set[int]:
    """Cheap and always terminating: satisfy each relation's cuts, then each attacker cut, greedily.
    `cuts_of_cell` may be shared by the components of one system (it is built lazily)."""
    pattern = set(start)
    cuts_of_cell = cuts_of_cell or RelationCuts(system, needs)
    lp = GrowingLP(system, needs.value)
    # Hiding a cell only widens what the attacker must allow for the others (one more unknown in
    # every LP), so a hidden cell that passed its attacker LPs keeps passing as the pattern grows:
    # each round checks only cells hidden since, and the ones that failed. The failures are those
    # a full check every round would find; the work is not quadratic. (The cuts, and so the cells
    # added, follow the LP duals, which depend on the solve history where duals are degenerate:
    # the same data and code give the same pattern; another version of this code may not.)
    passed: set[int] = set()
    settled: set[int] = set()
    while True:
        _satisfy_relation_cuts(pattern, cuts_of_cell, needs, settled)
        lp.hide(pattern)
        suspects = sorted(pattern - passed)
        _explore(lp, needs, suspects)
        failures = [cut for target in suspects for cut in _target_failures(system, needs, lp, target)]
        passed.update(suspects)
        passed -= {cut.target for cut in failures}
        progress = False
        for cut in failures:
            if cut.slack(pattern) >= -TOLERANCE:
                continue  # an earlier addition this round already helps; the next audit will tell
            progress |= _add_cheapest(pattern, cut, needs) is not None
        if not progress:  # no failure left, or nothing left to add (the audit reports that)
            if stats is not None:
                stats.attacker_lps += lp.solves
            return pattern


def _satisfy_relation_cuts(
    pattern: set[int], cuts_of_cell: RelationCuts, needs: CellNeeds, settled: set[int] | None = None
) -> None:
    """Hide cells until every hidden cell's relation cuts hold. A cut's slack only grows with the
    pattern, so a cell in `settled` (its cuts held, or could not be helped) is not looked at again:
    the same cells are added as by a pass over the whole pattern, without re-summing every cut."""
    settled = set() if settled is None else settled
    worklist = sorted(pattern - settled, reverse=True)
    while worklist:
        cell = worklist.pop()
        for cut in cuts_of_cell(cell):
            while cut.slack(pattern) < -TOLERANCE:
                added = _add_cheapest(pattern, cut, needs)
                if added is None:
                    break
                worklist.append(added)  # a newly hidden cell needs its own room too
        settled.add(cell)


def _add_cheapest(pattern: set[int], cut: Cut, needs: CellNeeds) -> int | None:
    """Hide the candidate with the least weight per unit of room it gives the cut (ties: lowest index)."""
    candidates = [(needs.weight[j] / v, j) for j, v in cut.coefficients.items() if j not in pattern]
    if not candidates:
        return None
    chosen = min(candidates)[1]
    pattern.add(chosen)
    return chosen


def optimal_pattern(
    system: CellSystem,
    needs: CellNeeds,
    rules_time_limit: float,
    max_rounds: int,
    stats: PatternStats,
    cells: Sequence[int],
) -> set[int] | None:
    """Cut-generation MIP over one component; None when the MIP finds no pattern in time."""
    column = {c: j for j, c in enumerate(cells)}
    highs = new_highs()
    highs.setOptionValue("time_limit", rules_time_limit)
    highs.setOptionValue("mip_rel_gap", 1e-4)
    highs.setOptionValue("random_seed", 0)
    lp = highspy.HighsLp()
    lp.num_col_ = len(cells)
    lp.col_cost_ = np.array([needs.weight[c] for c in cells], dtype=float)
    lp.col_lower_ = np.array([1.0 if needs.primary[c] else 0.0 for c in cells])
    lp.col_upper_ = np.ones(len(cells))
    lp.integrality_ = [highspy.HighsVarType.kInteger] * len(cells)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.zeros(len(cells) + 1, dtype=np.int32)
    highs.passModel(lp)
    _add_cut_rows(highs, relation_cuts(system, needs, cells), column)
    pattern: set[int] = set()
    cache: dict[tuple[int, ...], list[Cut]] = {}
    for _ in range(max_rounds):
        highs.run()
        status = highs.getModelStatus()
        stats.mip_status.append(highs.modelStatusToString(status))
        if highs.getInfo().primal_solution_status != 2:  # no feasible pattern found in time
            return None
        values = highs.getSolution().col_value
        pattern = {c for c, j in column.items() if values[j] > 0.5}
        cuts = attacker_failures(system, needs, pattern, stats, cache)
        stats.cut_rounds += 1
        if not cuts:
            return pattern
        stats.cuts += len(cuts)
        _add_cut_rows(highs, cuts, column)
    return None


def _add_cut_rows(highs: highspy.Highs, cuts: Sequence[Cut], column: dict[int, int]) -> None:
    """Σ coef·y_j − need·y_target ≥ 0 for every cut, as rows of the master MIP."""
    starts, index, value = [], [], []
    for cut in cuts:
        coefficients = dict(cut.coefficients)
        coefficients[cut.target] = coefficients.get(cut.target, 0.0) - cut.need
        starts.append(len(index))
        for j, v in sorted(coefficients.items()):
            if abs(v) > TOLERANCE:
                index.append(column[j])
                value.append(v)
    if not starts:
        return
    n = len(starts)
    highs.addRows(
        n,
        np.zeros(n),
        np.full(n, highspy.kHighsInf),
        len(index),
        np.array(starts, dtype=np.int32),
        np.array(index, dtype=np.int32),
        np.array(value),
    )


def complementary_pattern(
    system: CellSystem,
    needs: CellNeeds,
    *,
    mip_max_cells: int,
    mip_time_limit: float,
    max_rounds: int,
    method: str = "auto",
    mip_max_primaries: int | None = None,
) -> tuple[set[int], PatternStats]:
    """The hidden cells (primaries included) for all tables, solved per independent component.

    `method`: "auto" (MIP for a component of up to `mip_max_cells` cells and `mip_max_primaries`
    primary cells, greedy above or on MIP failure), "mip" or "greedy". The choice depends on the
    data only, never on the clock, so the same data always gets the same pattern (two releases of
    the same data with different patterns could be combined to narrow a hidden cell).
    """
    started = time.perf_counter()
    stats = PatternStats(method=method)
    used = set()
    pattern: set[int] = set()
    cuts_of_cell = RelationCuts(system, needs)  # shared by every component's greedy pass
    for cells in _cell_components(system):
        primaries = [c for c in cells if needs.primary[c]]
        if not primaries:
            continue
        chosen = None
        within = len(cells) <= mip_max_cells and len(primaries) <= (mip_max_primaries or len(primaries))
        if method == "mip" or (method == "auto" and within):
            chosen = optimal_pattern(system, needs, mip_time_limit, max_rounds, stats, cells)
            used.add("mip" if chosen is not None else "greedy (mip gave no pattern)")
        if chosen is None:
            chosen = greedy_pattern(system, needs, primaries, stats, cuts_of_cell)
            used.add("greedy")
        pattern |= chosen
    stats.method = "+".join(sorted(used)) or "none"
    stats.seconds = time.perf_counter() - started
    return pattern, stats
