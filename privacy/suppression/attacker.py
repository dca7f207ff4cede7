"""The attacker's linear programs: how far can a hidden cell move given everything published?

Only hidden cells are variables (published ones are constants moved to the right-hand side), so the
LPs split into the connected components of hidden cells linked by a relation. One HiGHS model per
component is reused for all its cells, changing only the objective (warm start).

Witnesses: every LP solution is a point the attacker cannot rule out, so each cell's lowest and
highest value seen in any solution bound its true interval from inside. A cell whose witnessed
range already gives it the room it needs passes without an LP of its own; only the others are
solved exactly. At 1,000 schools one hidden component holds thousands of cells, and two LPs per
cell over it was what kept disclosure control from finishing.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from privacy.suppression.cells import CellSystem

Relation = tuple[int, tuple[int, ...]]
TOLERANCE = 1e-9
# Batch witnesses (`AttackerLP.explore`): at most this many pushes each way, and only while this many cells
# still want room; below that, one LP per cell costs no more.
EXPLORE_ROUNDS = 4
EXPLORE_MIN_CELLS = 8


def new_highs() -> highspy.Highs:
    """A silent HiGHS instance. Its constructor prints a banner from C++ straight to fd 1 (once
    per process), which `silent()` comes too late to stop; `impact`'s output is for people."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highs = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    highs.silent()
    return highs


def relation_terms(relation: Relation) -> list[tuple[int, float]]:
    """total − Σ children = 0 as (cell, coefficient) pairs."""
    total, children = relation
    return [(total, 1.0), *((c, -1.0) for c in children)]


def hidden_components(system: CellSystem, hidden: Iterable[int]) -> list[tuple[list[int], list[int]]]:
    """Groups of hidden cells that share a relation, each with the relations that touch it (sorted)."""
    hidden = set(hidden)
    parent = {c: c for c in hidden}

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    touching: list[int] = []
    for r, relation in enumerate(system.relations):
        members = [c for c, _ in relation_terms(relation) if c in hidden]
        if members:
            touching.append(r)
            root = find(members[0])
            for c in members[1:]:
                other = find(c)
                if other != root:
                    parent[max(root, other)] = min(root, other)
                    root = min(root, other)
    cells: dict[int, list[int]] = {}
    for c in sorted(hidden):
        cells.setdefault(find(c), []).append(c)
    rows: dict[int, list[int]] = {root: [] for root in cells}
    for r in touching:
        first = next(c for c, _ in relation_terms(system.relations[r]) if c in hidden)
        rows[find(first)].append(r)
    return [(cells[root], rows[root]) for root in sorted(cells)]


@dataclass
class Move:
    """How far a hidden cell can move in one direction, with the row duals that certify the bound."""

    distance: float  # math.inf when unbounded
    row_duals: dict[int, float]  # relation index -> dual (empty when unbounded)


class AttackerLP:
    """min/max of cells subject to the relations and x ≥ 0, over one HiGHS model whose objective
    is changed in place (warm basis), with the witnesses of every solution it has seen."""

    def __init__(
        self,
        cells: Sequence[int],
        rows: Sequence[int],
        matrix: tuple[list[int], list[int], list[float]],
        rhs: Sequence[float],
        bounds: tuple[np.ndarray, np.ndarray],
        start: np.ndarray | None,
    ):
        self.cells = list(cells)
        self.rows = list(rows)
        self.column = {c: j for j, c in enumerate(self.cells)}
        starts, index, value = matrix
        lp = highspy.HighsLp()
        lp.num_col_ = len(self.cells)
        lp.num_row_ = len(self.rows)
        lp.col_cost_ = np.zeros(len(self.cells))
        lp.col_lower_, lp.col_upper_ = bounds
        lp.row_lower_ = np.array(rhs, dtype=float)
        lp.row_upper_ = np.array(rhs, dtype=float)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(value, dtype=float)
        self.highs = new_highs()
        self.highs.setOptionValue("presolve", "off")  # keeps the basis for warm starts
        # Primal simplex: a new objective leaves the last optimal basis primal feasible, so the
        # next optimum is often a few pivots away. HiGHS's default (dual) starts over in effect:
        # at 1,000 schools 60 solves took 9.5 s with it and 1.7 s with primal (78,000 → 180 pivots).
        self.highs.setOptionValue("simplex_strategy", 4)
        passed = self.highs.passModel(lp)
        if passed != highspy.HighsStatus.kOk:
            raise ValueError(f"attacker LP rejected: {passed}")
        self._costed: list[int] = []
        self.solves = 0  # every LP solved, pushes and their unbounded retries included
        self.low_seen = np.full(len(self.cells), math.inf)
        self.high_seen = np.full(len(self.cells), -math.inf)
        if start is not None:
            self._observe(np.asarray(start, dtype=float))

    def _observe(self, point: np.ndarray) -> None:
        np.minimum(self.low_seen, point, out=self.low_seen)
        np.maximum(self.high_seen, point, out=self.high_seen)

    def _solve(self, costs: dict[int, float]) -> float:
        """Minimize Σ costs·x (by column); the optimum, or −inf when unbounded. Records the witness."""
        if self._costed:
            self.highs.changeColsCost(
                len(self._costed), np.array(self._costed, dtype=np.int32), np.zeros(len(self._costed))
            )
        self._costed = sorted(costs)
        self.highs.changeColsCost(
            len(self._costed),
            np.array(self._costed, dtype=np.int32),
            np.array([costs[j] for j in self._costed], dtype=float),
        )
        self.highs.run()
        self.solves += 1
        status = self.highs.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            self._observe(np.asarray(self.highs.getSolution().col_value, dtype=float))
            return self.highs.getInfo().objective_function_value
        if status in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            if len(costs) == 1:  # this cell alone can grow without bound
                ((j, _),) = costs.items()
                self.high_seen[j] = math.inf
            return -math.inf
        raise ValueError(
            f"attacker LP is {self.highs.modelStatusToString(status)}: published values conflict"
        )

    def _minimize(self, cell: int, sign: float) -> float:
        return self._solve({self.column[cell]: sign})

    def seen(self, cell: int) -> tuple[float, float]:
        """The lowest and highest value of `cell` in any witness so far (inside its true interval)."""
        j = self.column[cell]
        return float(self.low_seen[j]), float(self.high_seen[j])

    def push(self, cells: Sequence[int], direction: int, round_: int = 0) -> bool:
        """One LP that moves all of `cells` up (+1) or down (−1) together: a witness for many cells
        at once. True when it widened some cell's seen range. Round 0 weighs every cell alike;
        later rounds weigh them by a seeded random draw, so each lands on another vertex (the same
        objective again would only find the same point) and the run stays deterministic.

        When the push is unbounded, the LP's ray names cells that can grow without limit (they are
        marked so) and the push is retried without them."""
        columns = [self.column[c] for c in cells]
        weights = (
            np.random.default_rng(round_).uniform(0.1, 1.0, len(columns)) if round_ else np.ones(len(columns))
        )
        before = (self.low_seen.copy(), self.high_seen.copy())
        while columns:
            objective = {j: -float(direction) * w for j, w in zip(columns, weights, strict=True)}
            if self._solve(objective) != -math.inf:
                break
            _, has_ray, ray = self.highs.getPrimalRay()
            growing = {j for j in columns if has_ray and ray[j] > TOLERANCE}
            if not growing:
                break
            self.high_seen[list(growing)] = math.inf
            kept = [k for k, j in enumerate(columns) if j not in growing]
            columns, weights = [columns[k] for k in kept], weights[kept]
        return not (np.array_equal(before[0], self.low_seen) and np.array_equal(before[1], self.high_seen))

    def explore(self, cells: Sequence[int], wants: Callable[[int], tuple[bool, bool]]) -> None:
        """Batch witnesses before any cell's own LP: push every cell that still `wants` room up
        (first flag) or down (second) together, while pushes widen something, up to EXPLORE_ROUNDS
        times. The caller's check decides what "room" means (the audit's, or protect's)."""
        for round_ in range(EXPLORE_ROUNDS):
            wanted = [(c, *wants(c)) for c in cells]
            ups = [c for c, up, _ in wanted if up]
            downs = [c for c, _, down in wanted if down]
            if len(ups) + len(downs) < EXPLORE_MIN_CELLS:
                return  # one LP per cell is as cheap
            widened = [
                self.push(group, direction, round_) for group, direction in ((ups, 1), (downs, -1)) if group
            ]
            if not any(widened):
                return

    def extremes(self, cell: int) -> tuple[float, float]:
        """The smallest and largest values of `cell` consistent with everything published."""
        lower = self._minimize(cell, 1.0)
        neg_upper = self._minimize(cell, -1.0)
        return lower, -neg_upper

    def move(self, cell: int, direction: int, value: float) -> Move:
        """How far `cell` (true value `value`) can go up (+1) or down (−1), and the certifying duals."""
        objective = self._minimize(cell, -float(direction))
        if objective == -math.inf:
            return Move(math.inf, {})
        distance = -objective - direction * value
        duals = self.highs.getSolution().row_dual
        return Move(distance, {r: duals[k] for k, r in enumerate(self.rows) if abs(duals[k]) > 1e-12})


class ComponentLP(AttackerLP):
    """One component of hidden cells: only they are columns; published cells are constants
    (`known`) moved to the right-hand side. The audit's model, built once per component."""

    def __init__(
        self,
        system: CellSystem,
        cells: Sequence[int],
        rows: Sequence[int],
        known: Callable[[int], float],
        start: np.ndarray | None = None,
    ):
        column = {c: j for j, c in enumerate(cells)}
        starts, index, value, rhs = [0], [], [], []
        for r in rows:
            constant = 0.0
            for c, coef in relation_terms(system.relations[r]):
                if c in column:
                    index.append(column[c])
                    value.append(coef)
                else:
                    constant += coef * known(c)
            starts.append(len(index))
            rhs.append(-constant)
        bounds = (np.zeros(len(cells)), np.full(len(cells), highspy.kHighsInf))
        super().__init__(cells, rows, (starts, index, value), rhs, bounds, start)


class GrowingLP(AttackerLP):
    """The hidden cells of a growing pattern as columns; published cells are constants on the
    right-hand side. `hide` adds columns (and rows for relations newly touched) in place, so a
    pattern that grows a few cells per round keeps one model, its basis and its witnesses (a point
    that satisfied the relations before a cell was freed still does, with the cell at its value),
    instead of a new model every round: at 1,000 schools the greedy pattern ran hundreds of
    rounds over one 7,000-cell component. Published cells are not columns: as fixed columns they
    made every pivot price 51,000 columns instead of 7,000."""

    def __init__(self, system: CellSystem, values: np.ndarray):
        super().__init__([], [], ([0], [], []), [], (np.zeros(0), np.zeros(0)), None)
        self.system, self.values = system, values
        self.row_of: dict[int, int] = {}  # relation -> row
        self.rhs: list[float] = []

    @property
    def hidden(self) -> set[int]:
        return set(self.column)

    def hide(self, cells: Iterable[int]) -> None:
        for c in sorted(set(cells) - self.column.keys()):
            self._add_column(c)

    def _add_column(self, c: int) -> None:
        j = len(self.cells)
        self.highs.addCol(0.0, 0.0, highspy.kHighsInf, 0, np.zeros(0, dtype=np.int32), np.zeros(0))
        self.cells.append(c)
        self.column[c] = j
        value = float(self.values[c])
        self.low_seen = np.append(self.low_seen, value)  # the witnesses, with c at its value
        self.high_seen = np.append(self.high_seen, value)
        for r in self.system.relations_of[c]:
            terms = relation_terms(self.system.relations[r])
            coefficient = next(coef for cell, coef in terms if cell == c)
            if r in self.row_of:  # c leaves the constants for the columns
                row = self.row_of[r]
                self.rhs[row] += coefficient * value
                self.highs.changeRowBounds(row, self.rhs[row], self.rhs[row])
                self.highs.changeCoeff(row, j, coefficient)
            else:
                rhs = -sum(coef * float(self.values[cell]) for cell, coef in terms if cell != c)
                self.row_of[r] = len(self.rows)
                self.rows.append(r)
                self.rhs.append(rhs)
                self.highs.addRow(rhs, rhs, 1, np.array([j], dtype=np.int32), np.array([coefficient]))
